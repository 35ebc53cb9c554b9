"""The worker's prefork pool replaces a pool process that died, at its half-second
check, and keeps working."""

import os
import signal
from types import SimpleNamespace

from apps.delivery.celery_overrides import pool
from apps.users.tasks import add
from config import celery_app
from tests.processes import children
from tests.servers import wait_until


def pool_processes(pid: int) -> set[int]:
    """The children of a worker's main process."""
    return set(children().get(pid, []))


def test_the_worker_uses_the_pool_that_checks_every_half_second():
    from celery.concurrency import get_implementation

    task_pool = get_implementation(celery_app.conf.worker_pool)
    assert issubclass(task_pool, pool.TaskPool)
    assert issubclass(task_pool.Pool, pool.AsynPool)
    # AsynPool.timers: what Celery's hub calls, and how often
    asyn_pool = SimpleNamespace(maintain_pool="maintain_pool")
    assert pool.AsynPool.timers.fget(asyn_pool) == {"maintain_pool": 0.5}


def test_a_killed_pool_process_is_replaced_and_tasks_keep_running(broker, start_worker):
    # given: a worker with two pool processes
    worker = start_worker(concurrency=2)
    before = wait_until(
        lambda: len(found := pool_processes(worker.process.pid)) == 2 and found,
        timeout=30,
        what="two pool processes",
    )
    # (and its event loop running: a pool process that dies between "ready" and the
    # loop's first turn makes Celery give up with "Could not start worker processes")
    assert add.delay(1, 1).get(timeout=20) == 2
    # when: one of them is SIGKILLed
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    # then: a new process takes its place, and tasks run on both
    after = wait_until(
        lambda: (
            len(found := pool_processes(worker.process.pid)) == 2 and victim not in found and found
        ),
        timeout=30,
        what="the killed pool process replaced",
    )
    assert after - before
    results = [add.delay(n, n) for n in range(8)]
    assert [result.get(timeout=30) for result in results] == [2 * n for n in range(8)]
    assert worker.running
