"""The worker's consumer: dead-letters what it cannot run, instead of dropping it.

Celery's consumer rejects an unknown task name or a malformed task message without
requeue (the broker dead-letters it), but *acknowledges* a body it refuses to decode
(a content type outside ``accept_content``, such as pickle), which deletes it. This
consumer records the failure facts first, rejects every such message so it reaches the
dead-letter queue, and declares that queue each time it connects, before consuming:
RabbitMQ silently drops a dead letter whose exchange does not exist.

Every line the worker's main process logs about a task message ("Task ... received")
carries the message's correlation id, as the task's own lines do.

At a cold shutdown on Redis it makes every message it holds unacknowledged (the
cancelled tasks', the prefetched ones, the countdowns waiting) due for redelivery at
once (``QoS.release_unacknowledged``): a worker killed a moment later (honcho kills 5
seconds after Ctrl-C) would otherwise leave them unacknowledged until the visibility
timeout, an hour. RabbitMQ hands such messages out again itself as soon as the
connection drops.

Selected with ``CELERY_WORKER_CONSUMER`` (:mod:`apps.delivery.celery_overrides`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading

from amqp.exceptions import PreconditionFailed
from celery.exceptions import WorkerShutdown
from celery.worker.consumer import Consumer as CeleryConsumer

from ..dead_letters import declare_dead_letter_queue
from ..failures import failure_record
from ..logs.context import CORRELATION_HEADER, correlation
from ..models import TaskFailure
from .redis_transport import QoS as RedisQoS

logger = logging.getLogger(__name__)

#: How long the cold shutdown waits to release the unacknowledged messages.
RELEASE_TIMEOUT_SECONDS = 2.0


class UnknownTask(LookupError):
    """A message names a task this worker does not have."""

    def __init__(self, name: str):
        super().__init__("no task named %r is registered on this worker" % name)


class Consumer(CeleryConsumer):
    def connect(self):
        connection = super().connect()
        try:
            declare_dead_letter_queue(connection)
            for queue in self.app.amqp.queues.values():
                queue(connection.default_channel).declare()
        except PreconditionFailed as exc:
            logger.critical(
                "The broker holds a queue declared with other arguments: %s. Conveyor's task "
                "queues are quorum queues with a dead-letter exchange; move the messages out "
                "and delete the old queue (rabbitmqctl delete_queue NAME), then start again.",
                exc,
            )
            raise WorkerShutdown(1) from exc
        return connection

    def update_strategies(self):
        super().update_strategies()
        for name, strategy in self.strategies.items():
            self.strategies[name] = _with_correlation(strategy)

    def cancel_active_requests(self):
        # Called by the cold shutdown.
        super().cancel_active_requests()
        qos = getattr(getattr(self.task_consumer, "channel", None), "qos", None)
        if isinstance(qos, RedisQoS):
            # A thread: this runs in a signal handler, which may have interrupted the
            # main thread while it held the Redis client's connection pool.
            releaser = threading.Thread(
                target=release_unacknowledged, args=(qos,), daemon=True, name="release"
            )
            releaser.start()
            releaser.join(RELEASE_TIMEOUT_SECONDS)

    def on_unknown_task(self, body, message, exc):
        name = (message.headers or {}).get("task", "?")
        self._record(message, TaskFailure.Reason.UNKNOWN_TASK, UnknownTask(name))
        super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body, message, exc):
        self._record(message, TaskFailure.Reason.INVALID_MESSAGE, exc)
        super().on_invalid_task(body, message, exc)

    def on_unknown_message(self, body, message):
        self._record(message, TaskFailure.Reason.INVALID_MESSAGE, None)
        super().on_unknown_message(body, message)

    def on_decode_error(self, message, exc):
        # Celery acknowledges (deletes) such a message; reject it to the dead letters.
        self._record(message, TaskFailure.Reason.UNDECODABLE, exc)
        logger.error(
            "Refused a message that cannot be decoded (content type %r, encoding %r): %s; "
            "it goes to the dead-letter queue.",
            message.content_type,
            message.content_encoding,
            exc,
        )
        message.reject_log_error(logger, self.connection_errors)

    def _record(self, message, reason, exc):
        headers = message.headers or {}
        task_id = headers.get("id") or (message.properties or {}).get("correlation_id")
        if not task_id:
            return
        try:
            failure_record(
                task_id=task_id,
                task_name=headers.get("task", ""),
                reason=reason,
                args=headers.get("argsrepr"),
                kwargs=headers.get("kwargsrepr"),
                routing_key=(message.delivery_info or {}).get("routing_key", ""),
                exc=exc,
                correlation_id=headers.get(CORRELATION_HEADER, ""),
                final=True,
            )
        except Exception:
            logger.exception("Could not record why message %s was refused.", task_id)


def release_unacknowledged(qos: RedisQoS) -> None:
    """Release the messages ``qos`` holds, and say how many."""
    try:
        count = qos.release_unacknowledged()
    except Exception:
        logger.warning(
            "Could not release the unacknowledged messages; they come back after the "
            "visibility timeout.",
            exc_info=True,
        )
        return
    if count:
        logger.warning(
            "Cold shutdown: released %d unacknowledged message(s) for redelivery at once.", count
        )


def _with_correlation(strategy):
    """A task's message handler, run with the message's correlation id current."""

    @functools.wraps(strategy)
    def handle(message, *args, **kwargs):
        correlation_id = (message.headers or {}).get(CORRELATION_HEADER)
        with correlation(str(correlation_id)) if correlation_id else contextlib.nullcontext():
            return strategy(message, *args, **kwargs)

    return handle
