"""Periodic tasks run once per beat slot: the slot, and a second delivery for it skipped."""

import re
from datetime import UTC, datetime, timedelta

from celery.schedules import crontab, schedule

from apps.common.tasks import perform_cleanup
from apps.delivery.idempotency import Claim, idempotency_claim, idempotency_complete
from apps.delivery.periodic import SLOT_HEADER, beat_slot


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_crontab_slot_is_the_scheduled_minute_whatever_beat_computes_it():
    every_5_minutes = crontab(minute="*/5")
    # two beats that last ran at different moments, both due at 12:05
    now = at("2026-11-24T12:05:00.700")
    assert beat_slot(every_5_minutes, at("2026-11-24T12:00:00.2"), now) == at("2026-11-24T12:05")
    assert beat_slot(every_5_minutes, at("2026-11-24T12:01:13"), now) == at("2026-11-24T12:05")


def test_an_interval_slot_is_the_window_of_the_clock_the_run_falls_in():
    every_10_s = schedule(timedelta(seconds=10))
    assert beat_slot(every_10_s, at("2026-11-24T12:00:00"), at("2026-11-24T12:00:13.4")) == (
        at("2026-11-24T12:00:10")
    )
    assert beat_slot(every_10_s, at("2026-11-24T12:00:07"), at("2026-11-24T12:00:19.9")) == (
        at("2026-11-24T12:00:10")
    )


def test_a_delivery_for_a_slot_being_run_or_done_logs_cleanup_skipped(broker, start_worker):
    # given: the slot's run claimed by another delivery, as a second beat's run finds it
    slot = "2026-12-02T00:00:00+00:00"
    key = "beat:apps.common.tasks.perform_cleanup:%s" % slot
    assert idempotency_claim(key=key, owner="other", lease=timedelta(minutes=5)) is Claim.ACQUIRED
    worker = start_worker(concurrency=1)
    # when / then: while the other runs, and once it is done
    perform_cleanup.apply_async(headers={SLOT_HEADER: slot}, ignore_result=True)
    worker.wait_for(r"Cleanup skipped: %s is being run by task other\." % re.escape(key))
    idempotency_complete(key=key, owner="other")
    perform_cleanup.apply_async(headers={SLOT_HEADER: slot}, ignore_result=True)
    worker.wait_for(r"Cleanup skipped: %s already ran\." % re.escape(key))
    assert not worker.matching("Cleanup finished")
