"""Stopping a worker loses nothing: warm shutdown, and what cannot finish comes back."""

import os
import signal

import pytest

from apps.payments.models import Payment
from apps.payments.tasks import process_payment
from tests.tasks import sleep_then_return


def group_sigterm(worker):
    """Stop the worker as honcho does: SIGTERM to its whole process group."""
    os.killpg(worker.process.pid, signal.SIGTERM)


def test_sigterm_during_a_task_lets_it_finish(broker, start_worker):
    worker = start_worker(concurrency=1)
    result = sleep_then_return.delay(3, "finished")
    worker.wait_for(r"Sleeping \d+ s")
    worker.signal(signal.SIGTERM)
    assert result.get(timeout=30) == "finished"
    assert result.state == "SUCCESS"
    worker.wait_for(r"Warm shutdown")
    assert worker.wait(timeout=30) == 0


@pytest.mark.parametrize(
    "stop", [group_sigterm, lambda w: w.signal(signal.SIGINT)], ids=["sigterm-to-group", "sigint"]
)
def test_the_supervised_worker_finishes_its_task_when_its_whole_group_is_stopped(
    broker, start_worker, stop
):
    worker = start_worker(concurrency=1, supervised=True, env={"WORKER_STOP_GRACE_SECONDS": "20"})
    result = sleep_then_return.delay(3, "finished")
    worker.wait_for(r"Sleeping \d+ s")
    stop(worker)
    assert result.get(timeout=30) == "finished"
    worker.wait_for(r"Warm shutdown")
    assert worker.wait(timeout=30) == 0


def test_tasks_queued_behind_a_stopping_worker_run_on_the_next_one(broker, start_worker):
    first = start_worker(concurrency=1)
    results = [sleep_then_return.delay(1, n) for n in range(5)]
    first.wait_for(r"Sleeping \d+ s")
    first.signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0
    done_by_first = len(first.matching(r"sleep_then_return\[.*\] succeeded"))
    assert done_by_first < 5
    second = start_worker(concurrency=2)
    assert [r.get(timeout=30) for r in results] == list(range(5))
    second.wait_for(r"sleep_then_return\[.*\] succeeded", count=5 - done_by_first)
    second.stop()
    assert len(second.matching(r"sleep_then_return\[.*\] succeeded")) == 5 - done_by_first


def test_a_task_longer_than_the_grace_period_comes_back_and_finishes_once(broker, start_worker):
    worker = start_worker(concurrency=1, supervised=True, env={"WORKER_STOP_GRACE_SECONDS": "1"})
    result = sleep_then_return.delay(6, "long")
    worker.wait_for(r"Sleeping \d+ s")
    group_sigterm(worker)
    worker.wait(timeout=30)
    assert not worker.matching(r"sleep_then_return\[.*\] succeeded")
    # on the next start it runs again, to the end
    again = start_worker(concurrency=1)
    assert result.get(timeout=60) == "long"
    again.wait_for(r"sleep_then_return\[.*\] succeeded")
    again.stop()
    assert len(again.matching(r"sleep_then_return\[.*\] succeeded")) == 1


def test_a_retry_waiting_for_its_countdown_survives_a_worker_restart(
    broker, start_worker, make_payment
):
    # given: a payment whose first charge fails, retried 4 to 8 seconds later
    env = {"TASK_RETRY_BACKOFF_SECONDS": "8", "TASK_RETRY_BACKOFF_MAX_SECONDS": "8"}
    first = start_worker(env=env)
    payment = make_payment(source="tok_flaky")
    process_payment.delay(str(payment.id))
    first.wait_for(r"retry: Retry in \d+s")
    # when: the worker stops before the retry is due
    first.signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0
    assert not first.matching("processed: charge")
    # then: the next worker runs the retry
    second = start_worker(env=env)
    second.wait_for(r"Payment %s processed" % payment.id, timeout=60)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PROCESSED
    assert payment.attempts == 2
