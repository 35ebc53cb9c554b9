"""The worker's prefork pool, replacing a dead pool process within half a second.

When a pool process dies (a segfault, the OOM killer, a task that kills its process on
every delivery), Celery usually notices at once from the process's exit, but at times
only at its next periodic pool check, five seconds later; meanwhile the worker works
with one process fewer. A poison message that kills ten processes in a row could cost
that ten times. This pool checks every half second.

Selected with ``CELERY_WORKER_POOL`` (:mod:`apps.delivery.celery_overrides`).
"""

from __future__ import annotations

from celery.concurrency import asynpool, prefork

#: Seconds between two checks that replace pool processes that exited.
MAINTAIN_INTERVAL_SECONDS = 0.5


class AsynPool(asynpool.AsynPool):
    @property
    def timers(self):
        return {self.maintain_pool: MAINTAIN_INTERVAL_SECONDS}


class TaskPool(prefork.TaskPool):
    Pool = AsynPool
