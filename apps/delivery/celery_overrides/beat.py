"""Celery beat's scheduler, with one run per slot and a heartbeat.

It stamps every message it sends with the slot the run is for (``x_beat_slot``,
:mod:`apps.delivery.periodic`), which makes every periodic task idempotent per slot,
and it touches ``RUN_DIR/heartbeats/beat`` on every tick, for
``python -m apps.delivery.processes.health beat``.

Selected with ``CELERY_BEAT_SCHEDULER``.
"""

from __future__ import annotations

import copy
import logging

from celery.beat import PersistentScheduler

from ..periodic import SLOT_HEADER, beat_slot
from ..processes.health import heartbeat_path, touch

logger = logging.getLogger(__name__)


class SlotScheduler(PersistentScheduler):
    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        slot = beat_slot(entry.schedule, entry.last_run_at, self.app.now())
        stamped = copy.copy(entry)
        stamped.options = dict(entry.options)
        stamped.options["headers"] = {
            **entry.options.get("headers", {}),
            SLOT_HEADER: slot.isoformat(),
        }
        return super().apply_async(stamped, producer=producer, advance=advance, **kwargs)

    def tick(self, *args, **kwargs):
        delay = super().tick(*args, **kwargs)
        self._heartbeat()
        return delay

    def _heartbeat(self):
        from django.conf import settings

        path = heartbeat_path("beat", run_dir=settings.RUN_DIR)
        try:
            touch(path)
        except OSError:
            logger.exception("Could not touch the heartbeat file %s.", path)
