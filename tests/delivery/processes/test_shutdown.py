"""Stopping a worker loses nothing: warm shutdown, and what cannot finish comes back."""

import os
import re
import signal
import subprocess
import sys

import pytest

from apps.delivery.celery_overrides import CELERY_56
from apps.delivery.processes.brokers import restore_unacknowledged
from apps.payments import gateway
from apps.payments.models import Payment
from apps.payments.tasks import process_payment
from tests.servers import wait_until
from tests.tasks import sleep_ignoring_sigterm, sleep_then_return


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
    # (On Celery 5.6, when the attempt ends the instant the warm shutdown begins, the
    # worker never reads its result: the pool process waits 30 s for that before it
    # exits, and the first message, never acknowledged, is delivered again.)
    assert first.wait(timeout=60) == 0
    assert not first.matching("processed: charge")
    # then: the next worker runs the retry
    second = start_worker(env=env)
    second.wait_for(r"Payment %s processed" % payment.id, timeout=60)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PROCESSED
    assert gateway.charge_count(idempotency_key=str(payment.id)) == 1
    assert payment.attempts == 2 or (CELERY_56 and payment.attempts == 3)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_task_deaf_to_cold_shutdown_is_killed_with_its_worker_and_kept_at_the_broker(
    broker, start_worker
):
    # given: a task whose pool process ignores SIGTERM, so Celery's cold shutdown waits on it
    env = {"WORKER_STOP_GRACE_SECONDS": "1", "WORKER_COLD_SHUTDOWN_SECONDS": "2"}
    worker = start_worker(concurrency=1, supervised=True, env=env)
    sleep_ignoring_sigterm.delay(600)
    worker.wait_for(r"deaf to SIGTERM")
    # when: stopped; warm shutdown for 1 s, cold shutdown for 2 s
    group_sigterm(worker)
    worker.wait(timeout=30)
    # then: the supervisor killed the worker and its pool processes
    (line,) = worker.matching(r"supervise: the worker \(pid \d+\) still runs 2 s")
    worker_pid = int(re.search(r"pid (\d+)", line).group(1))
    wait_until(lambda: not group_alive(worker_pid), timeout=10, what="the worker's group to exit")
    assert not worker.matching(r"sleep_ignoring_sigterm\[.*\] succeeded")
    # and the message is still at the broker, ready for the next start
    if broker.kind == "redis":
        assert broker.server.client().hlen("unacked") == 1
        restore_unacknowledged(broker.server.port)  # what the next `make dev` does
    wait_until(
        lambda: broker.server.queue_length("default") == 1,
        timeout=30,
        what="the task back in its queue",
    )


def test_the_supervisor_rejects_a_shutdown_time_that_is_not_a_number():
    run = subprocess.run(
        [sys.executable, "-m", "apps.delivery.processes.supervise", "--", "true"],
        env={**os.environ, "WORKER_COLD_SHUTDOWN_SECONDS": "soon"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert run.stderr.strip() == (
        "Configuration error: WORKER_COLD_SHUTDOWN_SECONDS='soon' is not a number of seconds "
        "(0 or more)."
    )
