"""The worker's consumer: dead-letters what it cannot run, and never dies of a message.

Celery's consumer rejects an unknown task name or a malformed task message without
requeue (the broker dead-letters it), but *acknowledges* a body it refuses to decode
(a content type outside ``accept_content``, such as pickle), which deletes it, and any
other error while it turns a message into a task request (a JSON body that is not
``[args, kwargs, embed]``) stops the worker, and the next one that takes the message.
This consumer checks each task message before Celery reads it, records the failure
facts, rejects every message no task can take so it reaches the dead-letter queue, and
declares that queue each time it connects, before consuming: RabbitMQ silently drops a
dead letter whose exchange does not exist. Each message it refuses is counted by route
(``conveyor_dead_letters_total``, :mod:`apps.delivery.metrics.instruments`).

It also enforces the delivery limit itself: a message delivered ``DELIVERY_LIMIT``
times without finishing (it killed its worker each time) is not run again but
dead-lettered, with its facts and its task's ``on_dead_letter`` hook, as a final failure
is. The brokers' own limits (RabbitMQ's ``x-delivery-limit``, the Redis transport's)
stay behind it as a backstop.

Every line the worker's main process logs about a task message ("Task ... received")
carries the message's correlation id, as the task's own lines do; an id that is not
valid (a line break, 100 KB) is replaced before anything logs or passes it on.

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
from celery.exceptions import InvalidTaskError, WorkerShutdown
from celery.worker.consumer import Consumer as CeleryConsumer
from django.conf import settings
from kombu.exceptions import ContentDisallowed, DecodeError

from ..dead_letters import declare_dead_letter_queue, message_id
from ..failures import failure_record
from ..logs.context import (
    CORRELATION_HEADER,
    correlation,
    new_correlation_id,
    valid_correlation_id,
)
from ..metrics import instruments
from ..models import TaskFailure
from .redis_transport import QoS as RedisQoS

logger = logging.getLogger(__name__)

#: How long the cold shutdown waits to release the unacknowledged messages.
RELEASE_TIMEOUT_SECONDS = 2.0


#: The header in which both brokers count a message's earlier deliveries that did not
#: finish (RabbitMQ's quorum queues, and Conveyor's Redis transport).
DELIVERY_COUNT_HEADER = "x-delivery-count"
#: What Celery's own handler turns into a rejection (on_invalid_task, on_decode_error).
HANDLED_BY_CELERY = (InvalidTaskError, ContentDisallowed, DecodeError)


class UnknownTask(LookupError):
    """A message names a task this worker does not have."""

    def __init__(self, name: str):
        super().__init__("no task named %r is registered on this worker" % name)


class DeliveryLimitExceeded(Exception):
    """A message was delivered as often as allowed, and never finished."""


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
            self.strategies[name] = self._guarded(strategy)

    def _guarded(self, strategy):
        """A task's message handler, checked first and run with its correlation id."""

        @functools.wraps(strategy)
        def handle(message, *args, **kwargs):
            correlation_id = _sanitized_correlation_id(message)
            with correlation(correlation_id) if correlation_id else contextlib.nullcontext():
                problem = task_body_problem(message)
                if problem:
                    raise InvalidTaskError(problem)
                deliveries = _earlier_deliveries(message)
                if deliveries >= settings.DELIVERY_LIMIT:
                    return self.on_delivery_limit(message, deliveries)
                try:
                    return strategy(message, *args, **kwargs)
                except HANDLED_BY_CELERY:
                    raise
                except Exception as exc:
                    # Celery would stop the worker: the message cannot become a request.
                    raise InvalidTaskError(
                        "the message cannot become a task request: %s: %s"
                        % (type(exc).__name__, exc)
                    ) from exc

        return handle

    def on_delivery_limit(self, message, deliveries: int) -> None:
        """Dead-letter a message delivered ``deliveries`` times that never finished."""
        headers = message.headers
        exc = DeliveryLimitExceeded(
            "delivered %d times without finishing (its worker died each time, or it was "
            "handed back); the delivery limit is %d" % (deliveries, settings.DELIVERY_LIMIT)
        )
        logger.error(
            "Task %s[%s] is not run again: %s. Its message goes to the dead-letter queue.",
            headers.get("task"),
            headers.get("id"),
            exc,
        )
        args, kwargs, _ = message.payload
        self._record(message, TaskFailure.Reason.DELIVERY_LIMIT, exc, args=args, kwargs=kwargs)
        dead_lettered = getattr(self.app.tasks.get(headers.get("task")), "dead_lettered", None)
        if dead_lettered is not None:
            dead_lettered(exc, args, kwargs)
        message.reject_log_error(logger, self.connection_errors)

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

    def _record(self, message, reason, exc, *, args=None, kwargs=None):
        headers = message.headers or {}
        # Only the delivery limit is a run of a task this worker has; the other routes'
        # task names come from the message, whatever it says.
        limited = reason == TaskFailure.Reason.DELIVERY_LIMIT
        instruments.dead_lettered(reason, task_name=headers.get("task", "") if limited else "")
        task_id = message_id(headers, message.properties or {}, message.body)
        try:
            failure_record(
                task_id=task_id,
                task_name=headers.get("task", ""),
                reason=reason,
                args=headers.get("argsrepr") if args is None else args,
                kwargs=headers.get("kwargsrepr") if kwargs is None else kwargs,
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


def task_body_problem(message) -> str | None:
    """What keeps a task message's body from being ``[args, kwargs, embed]``, if anything.

    Decoding it may raise ``ContentDisallowed`` or ``DecodeError``, which Celery's
    handler turns into a rejection. Celery decodes the body in the same place next, and
    kombu keeps it decoded, so checking costs nothing more.
    """
    if "task" not in (message.headers or {}):
        return None  # Celery's protocol 1, which carries all in the body
    body = message.payload
    if not isinstance(body, list | tuple) or len(body) != 3:
        return "the body is not [args, kwargs, embed]: %.200r" % (body,)
    args, kwargs, embed = body
    if not isinstance(args, list | tuple):
        return "the task's positional arguments are not a list: %.200r" % (args,)
    if not isinstance(kwargs, dict):
        return "the task's keyword arguments are not a mapping: %.200r" % (kwargs,)
    if embed is not None and not isinstance(embed, dict):
        return "the body's options are not a mapping: %.200r" % (embed,)
    return None


def _earlier_deliveries(message) -> int:
    try:
        return int((message.headers or {}).get(DELIVERY_COUNT_HEADER) or 0)
    except (TypeError, ValueError):
        return 0


def _sanitized_correlation_id(message) -> str | None:
    """The message's correlation id; an invalid one is replaced in the message itself,
    so that nothing downstream (log lines, the task, its child tasks) sees it."""
    headers = message.headers or {}
    value = headers.get(CORRELATION_HEADER)
    if value is None or valid_correlation_id(value):
        return value
    replacement = headers[CORRELATION_HEADER] = new_correlation_id()
    with correlation(replacement):
        logger.warning(
            "Task message %s carried an invalid correlation id (%d characters); using %s.",
            headers.get("id"),
            len(str(value)),
            replacement,
        )
    return replacement
