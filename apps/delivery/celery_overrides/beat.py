"""Celery beat's scheduler, with one run per slot, a heartbeat, and its schedule named.

It logs every entry of its schedule as it starts (name, task, schedule in words, next
run). It stamps every message it sends with the slot the run is for (``x_beat_slot``,
:mod:`apps.delivery.periodic`), which makes every periodic task idempotent per slot,
and it touches ``RUN_DIR/heartbeats/beat`` on every tick, for
``python -m apps.delivery.processes.health beat``.

Selected with ``CELERY_BEAT_SCHEDULER``.
"""

from __future__ import annotations

import copy
import logging
from datetime import timedelta

from celery.beat import PersistentScheduler
from celery.schedules import crontab, schedule

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

    def setup_schedule(self):
        super().setup_schedule()
        now = self.app.now()
        for name, entry in sorted(self.schedule.items()):
            if name.startswith("celery."):
                continue
            remaining = entry.schedule.remaining_estimate(entry.last_run_at)
            # to the nearest second: the estimate is a few microseconds short
            moment = now + max(remaining, timedelta(0)) + timedelta(milliseconds=500)
            next_run = moment.replace(microsecond=0).isoformat()
            words = in_words(entry.schedule)
            logger.info(
                "Scheduled %s: task %s, %s, next run %s.",
                name,
                entry.task,
                words,
                next_run,
                extra={
                    "schedule_entry": name,
                    "scheduled_task": entry.task,
                    "schedule": words,
                    "next_run": next_run,
                },
            )

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


def in_words(when) -> str:
    """A schedule as an operator reads it: "every day at 00:00 (cron 0 0 * * *)"."""
    if isinstance(when, crontab):
        # The fields as written (crontab keeps them in _orig_*; its repr shows them too).
        fields = [
            str(getattr(when, "_orig_%s" % name))
            for name in ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
        ]
        cron = " ".join(fields)
        minute, hour, *rest = fields
        if minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"]:
            return "every day at %02d:%02d (cron %s)" % (int(hour), int(minute), cron)
        return "cron %s" % cron
    if isinstance(when, schedule):
        return "every %g s" % when.run_every.total_seconds()
    return str(when)
