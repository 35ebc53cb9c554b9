"""Celery beat's scheduler, with one run per slot, a heartbeat, and its schedule named.

It logs every entry of its schedule as it starts (name, task, schedule in words, next
run). It stamps every message it sends with the slot the run is for (``x_beat_slot``,
:mod:`apps.delivery.periodic`), which makes every periodic task idempotent per slot,
and it touches ``RUN_DIR/heartbeats/beat`` on every tick, for
``python -m apps.delivery.processes.health beat``. It reports its schedule (each entry's
last and next run) and the queue depths to the operator console every few seconds, from
a thread (:mod:`apps.delivery.process_reports`).

Selected with ``CELERY_BEAT_SCHEDULER``.
"""

from __future__ import annotations

import copy
import logging
import socket
import time
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
        for entry in beat_state(self.schedule, self.app.now())["entries"]:
            logger.info(
                "Scheduled %s: task %s, %s, next run %s.",
                entry["name"],
                entry["task"],
                entry["schedule"],
                entry["next_run"],
                extra={
                    "schedule_entry": entry["name"],
                    "scheduled_task": entry["task"],
                    "schedule": entry["schedule"],
                    "next_run": entry["next_run"],
                },
            )

    def tick(self, *args, **kwargs):
        delay = super().tick(*args, **kwargs)
        self._heartbeat()
        self._snapshot()
        return delay

    def close(self):
        reporter = getattr(self, "_reporter", None)
        if reporter is not None:
            reporter.stop()
            self._reporter = None
        super().close()

    def _snapshot(self):
        """Hand the schedule as it stands to the report thread (started on the first
        tick), at most once per report interval."""
        from django.conf import settings

        interval = settings.PROCESS_REPORT_INTERVAL_SECONDS
        now = time.monotonic()
        if now - getattr(self, "_snapshot_at", -interval) < interval:
            return
        self._snapshot_at = now
        self._state = beat_state(self.schedule, self.app.now())
        if getattr(self, "_reporter", None) is None:
            self._reporter = self._start_reporter()

    def _start_reporter(self):
        from django.conf import settings

        from ..process_reports import process_reporter

        reporter = process_reporter(
            "beat",
            socket.gethostname(),
            app=self.app,
            queues=[*self.app.amqp.queues, settings.DEAD_LETTER_QUEUE],
            state=lambda: self._state,
        )
        reporter.start()
        return reporter

    def _heartbeat(self):
        from django.conf import settings

        path = heartbeat_path("beat", run_dir=settings.RUN_DIR)
        try:
            touch(path)
        except OSError:
            logger.exception("Could not touch the heartbeat file %s.", path)


def beat_state(entries: dict, now) -> dict:
    """What beat reports: its last tick, and each entry's task, schedule, runs, last and
    next run (soonest first)."""
    listed = []
    for name, entry in entries.items():
        if name.startswith("celery."):
            continue
        remaining = entry.schedule.remaining_estimate(entry.last_run_at)
        # to the nearest second: the estimate is a few microseconds short
        moment = now + max(remaining, timedelta(0)) + timedelta(milliseconds=500)
        listed.append(
            {
                "name": name,
                "task": entry.task,
                "schedule": in_words(entry.schedule),
                "runs": entry.total_run_count,
                "last_run": entry.last_run_at.isoformat() if entry.total_run_count else None,
                "next_run": moment.replace(microsecond=0).isoformat(),
            }
        )
    listed.sort(key=lambda entry: (entry["next_run"], entry["name"]))
    return {"last_tick": now.isoformat(), "entries": listed}


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
