"""Celery beat's scheduler, with one run per slot and a heartbeat.

Two beat processes running by mistake (a classic incident: a deploy that starts the new
one before the old one stops) would each send every periodic task. This scheduler
stamps each message with its *slot*, the scheduled time it runs for, in the header
``x_beat_slot``. ``DeliveryTask`` turns the slot into an idempotency key
(``beat:<task>:<slot>``), so a slot runs once whichever beat sends it first; the other
delivery is skipped and says so.

A slot is the same for every beat: for a crontab, the minute the schedule names; for an
interval of N seconds, the N-second window of the clock the run falls in.

It also touches ``RUN_DIR/heartbeats/beat`` on every tick, for
``python -m apps.delivery.health beat``.

Selected with ``CELERY_BEAT_SCHEDULER``.
"""

from __future__ import annotations

import copy
import logging
import math
from datetime import UTC, datetime

from celery.beat import PersistentScheduler
from celery.schedules import crontab

from .health import heartbeat_path, touch

logger = logging.getLogger(__name__)

#: The message header naming the slot a periodic task runs for.
SLOT_HEADER = "x_beat_slot"


def beat_slot(schedule, last_run_at: datetime, now: datetime) -> datetime:
    """The scheduled time a run that is due ``now`` is for (the same in every beat)."""
    if isinstance(schedule, crontab):
        # The first crontab match after the previous run: the minute this run is for.
        # (Celery before 5.7 consults the clock as well: it is told ``now``.)
        schedule = copy.copy(schedule)
        schedule.nowfun = lambda: now
        start, delta, _ = schedule.remaining_delta(last_run_at)
        return (start + delta).astimezone(UTC).replace(second=0, microsecond=0)
    every = schedule.run_every.total_seconds()
    return datetime.fromtimestamp(math.floor(now.timestamp() / every) * every, tz=UTC)


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
