"""The dead-letter queue: what failed for good, kept at the broker for an operator.

Where a failed task goes, on either broker:

============================  ==========================================================
route                         what happens
============================  ==========================================================
a task fails for good         ``DeliveryTask`` records the failure facts and lets the
(permanent, or transient and  task fail; the worker rejects its message without requeue
out of retries)               (late acknowledgement, ``acks_on_failure_or_timeout``)
a message no task can take    the worker's consumer records the facts and rejects it:
(unknown task, malformed,     :mod:`apps.delivery.celery_overrides.consumer`
undecodable such as pickle)
delivered more than           it keeps killing its worker: the broker stops handing it
``DELIVERY_LIMIT`` times      out
============================  ==========================================================

A rejected message then reaches the queue ``dead_letter``: on RabbitMQ through the task
queue's dead-letter exchange, with RabbitMQ's own delivery limit (the queue arguments in
``config/settings/base.py``); on Redis, which has neither, Conveyor's Redis transport
(:mod:`apps.delivery.celery_overrides.redis_transport`) moves it in the same transaction
that removes it from the unacknowledged set, and counts deliveries.

The broker keeps the message exactly as it was sent, plus ``x-death``. The failure facts
(exception, traceback, retries, times; :mod:`apps.delivery.failures`) are kept beside it
in the database, keyed by task id, and joined here.

The operator tools (``manage.py deadletters``, the admin page) use :func:`dead_letters`
(or :func:`dead_letter_box`), which speaks to either broker: :mod:`.rabbitmq`,
:mod:`.redis`, over what both share in :mod:`.box`. A dead letter leaves the queue only
by replay or purge. Replay is at-least-once: the message is republished before it is
removed, so a failed republish leaves it in place, and the idempotency of the tasks
absorbs the rare repeat.
"""

from __future__ import annotations

from contextlib import contextmanager

from celery import current_app

from .box import (
    DeadLetter,
    DeadLetterBox,
    DeadLetterNotFound,
    dead_letter_queue,
    declare_dead_letter_queue,
    message_id,
)
from .rabbitmq import RabbitMQDeadLetterBox
from .redis import RedisDeadLetterBox

__all__ = (
    "DeadLetter",
    "DeadLetterBox",
    "DeadLetterNotFound",
    "dead_letter_box",
    "dead_letter_queue",
    "dead_letters",
    "declare_dead_letter_queue",
    "message_id",
)


def dead_letters(connection) -> DeadLetterBox:
    """The dead-letter queue behind a kombu connection, whichever the broker."""
    kind = connection.transport.driver_type
    if kind == "amqp":
        return RabbitMQDeadLetterBox(connection)
    if kind == "redis":
        return RedisDeadLetterBox(connection)
    raise ValueError("no dead-letter queue on a %r broker" % kind)


@contextmanager
def dead_letter_box(app=None):
    """The dead-letter queue of the Celery app's broker (the current app's by default),
    over a connection held for the block."""
    with (app or current_app).connection_for_write() as connection:
        yield dead_letters(connection)
