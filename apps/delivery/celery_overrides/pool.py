"""The worker's prefork pool, replacing a dead pool process within half a second, and
telling the metrics when one is gone.

When a pool process dies (a segfault, the OOM killer, a task that kills its process on
every delivery), Celery usually notices at once from the process's exit, but at times
only at its next periodic pool check, five seconds later; meanwhile the worker works
with one process fewer. A poison message that kills ten processes in a row could cost
that ten times. This pool checks every half second.

A pool process that exited, however it died, is marked dead in the worker's metrics
directory (:func:`apps.delivery.metrics.directory.mark_process_dead`), so a task it was
running no longer counts as running.

Selected with ``CELERY_WORKER_POOL`` (:mod:`apps.delivery.celery_overrides`).
"""

from __future__ import annotations

from celery.concurrency import asynpool, prefork

from ..metrics.directory import mark_process_dead

#: Seconds between two checks that replace pool processes that exited.
MAINTAIN_INTERVAL_SECONDS = 0.5


class AsynPool(asynpool.AsynPool):
    @property
    def timers(self):
        return {self.maintain_pool: MAINTAIN_INTERVAL_SECONDS}

    def _join_exited_workers(self, shutdown=False):
        # billiard's: it removes the processes that exited from self._pool.
        before = {process.pid for process in self._pool}
        try:
            return super()._join_exited_workers(shutdown=shutdown)
        finally:
            for pid in before - {process.pid for process in self._pool}:
                mark_process_dead(pid)


class TaskPool(prefork.TaskPool):
    Pool = AsynPool
