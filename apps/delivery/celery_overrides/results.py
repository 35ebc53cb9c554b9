"""The ``rpc://`` result backend, whose declaration of a reply queue gives up in time.

Before it sends a task, the sending process declares the queue the result will come back
on. Celery retries that declaration for as long as the broker is down, so a web request
calling ``delay()`` hangs for the whole outage. This backend retries it as the publish
itself is retried (``task_publish_retry_policy``), so ``delay()`` fails within
``ENQUEUE_TIMEOUT_SECONDS`` or so.

Named for the ``rpc`` scheme (``RESULT_BACKENDS``), so ``rpc://`` selects it.
"""

from __future__ import annotations

from celery._state import task_join_will_block
from celery.backends import rpc
from kombu.common import maybe_declare


class RPCBackend(rpc.RPCBackend):
    def on_task_call(self, producer, task_id):
        # Not from inside a task in a pool process: its queue is declared already.
        if not task_join_will_block():
            maybe_declare(
                self.binding(producer.channel),
                retry=True,
                **self.app.conf.task_publish_retry_policy,
            )
