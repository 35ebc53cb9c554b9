"""perform_cleanup: real housekeeping, and one run per beat slot even with two beats."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from celery.schedules import crontab, schedule
from django.contrib.sessions.models import Session
from django.utils import timezone

from apps.common import services
from apps.common.tasks import perform_cleanup
from apps.delivery.beat import SLOT_HEADER, beat_slot
from apps.delivery.idempotency import Claim, idempotency_claim, idempotency_complete
from apps.delivery.models import IdempotencyRecord, TaskFailure
from apps.payments.models import Payment
from apps.payments.tasks import process_payment
from tests.delivery.test_dead_letters import dead_lettered


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


@pytest.mark.django_db(transaction=True)
def test_cleanup_removes_what_outlived_its_retention_and_keeps_the_rest(settings, broker):
    now = timezone.now()
    old, recent = now - timedelta(days=40), now - timedelta(hours=1)
    Session.objects.create(session_key="old", session_data="", expire_date=old)
    Session.objects.create(session_key="new", session_data="", expire_date=now + timedelta(days=1))
    for key, completed in (("done:old", old), ("done:new", recent)):
        assert idempotency_claim(key=key, owner=key, lease=timedelta(minutes=5)) is Claim.ACQUIRED
        idempotency_complete(key=key, owner=key)
        IdempotencyRecord.objects.filter(key=key).update(completed_at=completed)
    for task_id, dead in (("retried-long-ago", None), ("waiting", old)):
        TaskFailure.objects.create(
            task_id=task_id, first_failed_at=old, last_failed_at=old, dead_lettered_at=dead
        )
    # when
    counts = services.cleanup_run()
    # then
    assert counts == {
        "expired_sessions": 1,
        "idempotency_records": 1,
        "failure_facts": 1,
        "dead_letters": 0,
        "requeued_payments": 0,
    }
    assert list(Session.objects.values_list("session_key", flat=True)) == ["new"]
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["done:new"]
    assert list(TaskFailure.objects.values_list("task_id", flat=True)) == ["waiting"]


def test_dead_letters_are_purged_only_past_a_configured_retention(broker, start_worker, settings):
    from apps.users.tasks import add

    start_worker()
    add.delay("x", 1)
    dead_lettered(broker, 1)
    assert services.cleanup_run()["dead_letters"] == 0  # default: kept
    settings.DEAD_LETTER_RETENTION_DAYS = 1
    TaskFailure.objects.update(dead_lettered_at=timezone.now() - timedelta(days=2))
    assert services.cleanup_run()["dead_letters"] == 1
    assert broker.server.queue_length("dead_letter") == 0


def test_a_payment_stuck_pending_is_enqueued_again_unless_it_waits_for_an_operator(
    broker, start_worker, make_payment
):
    # given: two payments pending for an hour; one's task is in the dead-letter queue
    worker = start_worker(env={"TASK_MAX_RETRIES": "0"})
    stuck, dead = make_payment(), make_payment()
    Payment.objects.update(created_at=timezone.now() - timedelta(hours=1))
    dead_letter_a_payment_task(dead)
    # when
    assert services.cleanup_run()["requeued_payments"] == 1
    # then: the lost one is processed; the dead-lettered one is left alone
    worker.wait_for(r"Payment %s processed" % stuck.id)
    dead.refresh_from_db()
    assert dead.status == Payment.Status.PENDING
    assert broker.server.queue_length("dead_letter") == 1


def dead_letter_a_payment_task(payment):
    """Put a process_payment message for ``payment`` straight into the dead-letter queue."""
    process_payment.apply_async(
        (str(payment.id),), exchange="dead_letter", routing_key="dead_letter"
    )
