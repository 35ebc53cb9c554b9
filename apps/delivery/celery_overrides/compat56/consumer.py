"""Celery 5.6's consumer: a lost broker connection must not end the worker.

After a lost connection Celery cancels the running tasks acknowledged late (their
messages are handed out again). On Celery 5.6 an error raised while one is cancelled
(its result backend, ``rpc://``, is the broker that just went away) escapes and stops
the worker; 5.7 guards each cancellation itself.

Selected with ``CELERY_WORKER_CONSUMER`` on Celery 5.6.
"""

from __future__ import annotations

import logging

from celery.worker.state import active_requests

from .. import consumer

logger = logging.getLogger(__name__)


class Consumer(consumer.Consumer):
    def on_connection_error_after_connected(self, exc):
        if self.app.conf.worker_cancel_long_running_tasks_on_connection_loss:
            # Cancel them here, as Celery would next, but let no error stop the worker;
            # a cancelled request leaves active_requests before its result is stored.
            for request in tuple(active_requests):
                if request.task.acks_late and not request.acknowledged:
                    logger.warning(
                        "Task %s[%s] is cancelled: the broker connection was lost; its "
                        "message is handed out again.",
                        request.name,
                        request.id,
                    )
                    try:
                        request.cancel(self.pool)
                    except Exception as error:
                        logger.warning("Cancelling task %s: %r", request.id, error)
        super().on_connection_error_after_connected(exc)
