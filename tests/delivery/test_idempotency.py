"""Idempotency claims: once per key, across deliveries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.delivery.idempotency import (
    Claim,
    idempotency_claim,
    idempotency_complete,
    idempotency_release,
)
from apps.delivery.models import IdempotencyRecord

LEASE = timedelta(minutes=5)


@pytest.fixture
def claim(db):
    def claim(owner, *, key="job:1", lease=LEASE, redelivered=False, attempt=0):
        return idempotency_claim(
            key=key, owner=owner, lease=lease, redelivered=redelivered, attempt=attempt
        )

    return claim


def test_the_first_delivery_runs_and_a_concurrent_duplicate_is_skipped(claim):
    assert claim("task-a") is Claim.ACQUIRED
    assert claim("task-b") is Claim.BUSY


def test_a_duplicate_after_completion_is_skipped(claim):
    claim("task-a")
    idempotency_complete(key="job:1", owner="task-a")
    assert claim("task-b") is Claim.DONE
    assert claim("task-a", redelivered=True) is Claim.DONE


def test_a_redelivery_of_the_same_task_takes_over_from_its_dead_worker(claim):
    claim("task-a")
    assert claim("task-a", redelivered=True) is Claim.ACQUIRED


def test_the_same_task_id_delivered_twice_at_once_runs_once(claim):
    # e.g. a publish retried after a lost confirmation: same id, not a redelivery
    claim("task-a")
    assert claim("task-a") is Claim.BUSY


def test_a_claim_whose_lease_ran_out_can_be_taken_over(claim):
    claim("task-a", lease=timedelta(seconds=-1))
    assert claim("task-b") is Claim.ACQUIRED
    assert IdempotencyRecord.objects.get(key="job:1").owner == "task-b"


def test_a_failed_run_releases_the_key_for_its_retry_or_a_replay(claim):
    claim("task-a")
    idempotency_release(key="job:1", owner="task-a")
    assert claim("task-a") is Claim.ACQUIRED


def test_only_the_holder_can_complete_or_release(claim):
    claim("task-a")
    idempotency_release(key="job:1", owner="task-b")
    idempotency_complete(key="job:1", owner="task-b")
    record = IdempotencyRecord.objects.get(key="job:1")
    assert (record.owner, record.state) == ("task-a", IdempotencyRecord.State.RUNNING)


def test_a_retry_takes_over_a_claim_its_failed_attempt_could_not_release(claim):
    claim("task-a", attempt=0)
    assert claim("task-a", attempt=1) is Claim.ACQUIRED
    assert IdempotencyRecord.objects.get(key="job:1").attempt == 1
    assert claim("task-a", attempt=1) is Claim.BUSY


def test_a_new_key_is_claimed_in_one_statement(claim):
    with CaptureQueriesContext(connection) as queries:
        assert claim("task-a", key="job:new") is Claim.ACQUIRED
    assert [query["sql"].split()[0] for query in queries] == ["INSERT"]
    record = IdempotencyRecord.objects.get(key="job:new")
    assert (record.owner, record.state) == ("task-a", IdempotencyRecord.State.RUNNING)
    assert record.created_at <= record.locked_until
