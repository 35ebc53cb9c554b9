"""Periodic tasks run once per *slot*, even when two beats send them.

Two beat processes running by mistake (a classic incident: a deploy that starts the new
one before the old one stops) would each send every periodic task. Conveyor's beat
scheduler (:mod:`apps.delivery.celery_overrides.beat`) stamps each message with its
slot, the scheduled time it runs for, in the header ``x_beat_slot``; ``DeliveryTask``
turns the slot into an idempotency key (``beat:<task>:<slot>``), so a slot runs once
whichever beat sends it first, and the other delivery is skipped and says so.

A slot is the same for every beat: for a crontab, the minute the schedule names; for an
interval of N seconds, the N-second window of the clock the run falls in.
"""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime

from celery.schedules import crontab

#: The message header naming the slot a periodic task runs for.
SLOT_HEADER = "x_beat_slot"


def beat_slot(schedule, last_run_at: datetime, now: datetime) -> datetime:
    """The scheduled time a run that is due ``now`` is for (the same in every beat)."""
    if isinstance(schedule, crontab):
        # The first crontab match after the previous run: the minute this run is for.
        # (Celery 5.6 consults the clock as well: it is told ``now``.)
        schedule = copy.copy(schedule)
        schedule.nowfun = lambda: now
        start, delta, _ = schedule.remaining_delta(last_run_at)
        return (start + delta).astimezone(UTC).replace(second=0, microsecond=0)
    every = schedule.run_every.total_seconds()
    return datetime.fromtimestamp(math.floor(now.timestamp() / every) * every, tz=UTC)


def slot_key(task_name: str, slot: str) -> str:
    """The idempotency key of a periodic task's run for ``slot``."""
    return "beat:%s:%s" % (task_name, slot)
