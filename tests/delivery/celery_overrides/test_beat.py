"""Conveyor's beat scheduler: two beats by mistake still run each slot once; it names its
schedule as it starts."""

import json
import re
from datetime import UTC, datetime, time, timedelta

import pytest
from celery.schedules import crontab, schedule

from apps.delivery.celery_overrides.beat import in_words


def test_two_beats_run_the_cleanup_once_per_slot(broker, start_worker, start_beat):
    # given: two beats by mistake, both on a 1-second schedule
    env = {"CLEANUP_SCHEDULE": "1"}
    worker = start_worker(env=env, concurrency=2)
    start_beat(env=env)
    start_beat(env=env)
    # when
    worker.wait_for(
        r"Cleanup skipped: beat:apps\.common\.tasks\.perform_cleanup:", count=2, timeout=30
    )
    # then: no slot ran twice
    worker.stop()
    slots = [
        re.search(r"\(slot (\S+)\)", line).group(1) for line in worker.matching("Cleanup finished")
    ]
    assert len(slots) >= 2
    assert len(slots) == len(set(slots))
    skipped = [
        re.search(r"perform_cleanup:(\S+) (already ran|is being run by task)", line).group(1)
        for line in worker.matching("Cleanup skipped")
    ]
    assert set(skipped) <= set(slots)


def test_beat_names_every_entry_of_its_schedule_as_it_starts(broker, start_beat):
    beat = start_beat(env={"LOG_FORMAT": "json"})
    beat.wait_for(r"Scheduled \S+: task ", count=3, timeout=30)
    scheduled = {
        record["schedule_entry"]: record
        for record in map(json.loads, beat.matching(r'"schedule_entry"'))
    }
    assert set(scheduled) == {
        "cleanup-every-midnight",
        "requeue-pending-payments-every-midnight",
        "expire-dead-letters-every-midnight",
    }
    cleanup = scheduled["cleanup-every-midnight"]
    assert cleanup["scheduled_task"] == "apps.common.tasks.perform_cleanup"
    assert cleanup["schedule"] == "every day at 00:00 (cron 0 0 * * *)"
    next_run = datetime.fromisoformat(cleanup["next_run"])
    tomorrow = datetime.now(tz=UTC).date() + timedelta(days=1)
    assert next_run == datetime.combine(tomorrow, time(0, 0), tzinfo=UTC)
    assert cleanup["message"].startswith("Scheduled cleanup-every-midnight: task ")


@pytest.mark.parametrize(
    ("when", "words"),
    [
        (crontab(minute=30, hour=2), "every day at 02:30 (cron 30 2 * * *)"),
        (crontab(minute="*/15"), "cron */15 * * * *"),
        (schedule(timedelta(seconds=90)), "every 90 s"),
    ],
)
def test_schedules_in_words(when, words):
    assert in_words(when) == words
