"""A broker restart loses nothing: queued messages are durable, running ones come back."""

import pytest

from apps.users.tasks import add
from tests.tasks import sleep_then_return


@pytest.fixture
def broker(own_broker):
    """A broker this module's tests may restart."""
    return own_broker


def test_queued_tasks_survive_a_broker_restart(broker, start_worker):
    results = [add.delay(n, n) for n in range(5)]
    assert broker.server.queue_length("default") == 5
    broker.server.stop()
    broker.server.start()
    assert broker.server.queue_length("default") == 5
    start_worker()
    assert [r.get(timeout=30) for r in results] == [0, 2, 4, 6, 8]


def test_a_task_running_during_a_broker_restart_runs_again_and_the_worker_carries_on(
    broker, start_worker
):
    # Short visibility timeout, so Redis hands the interrupted message out again soon.
    worker = start_worker(
        concurrency=1,
        env={
            "REDIS_VISIBILITY_TIMEOUT_SECONDS": "9",
            "TASK_TIME_LIMIT_SECONDS": "7",
            "TASK_SOFT_TIME_LIMIT_SECONDS": "6",
            "TASK_RETRY_BACKOFF_SECONDS": "1",
            "TASK_RETRY_BACKOFF_MAX_SECONDS": "1",
        },
    )
    # (no result subscription: this process's own result consumer must not see the restart)
    result = sleep_then_return.apply_async((4, "survived"), ignore_result=True)
    worker.wait_for(r"Sleeping 4 s")
    broker.server.stop()
    broker.server.start()
    # The worker cancels the interrupted run (its message is handed out again) ...
    worker.wait_for(r"sleep_then_return\[%s\] succeeded" % result.id, timeout=90)
    assert len(worker.matching(r"Sleeping 4 s")) == 2
    # ... and carries on with new work.
    added = add.delay(2, 2)
    worker.wait_for(r"add\[%s\] succeeded" % added.id, timeout=60)
