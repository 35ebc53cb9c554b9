"""The project's task class: what every task gets without asking.

``config/celery.py`` makes :class:`DeliveryTask` the class of every ``@shared_task``,
so a task body holds only its business call. Around it, the class

- classifies a failure once (:mod:`apps.delivery.failures`) and retries a transient
  one with capped exponential backoff and jitter, within the retry budget
  (``TASK_MAX_RETRIES``, ``TASK_RETRY_BACKOFF_SECONDS``, ``TASK_RETRY_BACKOFF_MAX_SECONDS``,
  or the task's own ``max_retries`` / ``retry_backoff`` / ``retry_backoff_max``);
- lets a final failure (permanent, or out of retries) fail the task, which rejects its
  message without requeueing it (late acknowledgement; ``acks_on_failure_or_timeout``),
  so the broker moves it to the dead-letter queue; the failure facts (exception,
  traceback, retries, times) are recorded beside it (:mod:`apps.delivery.failures`),
  the dead letter is counted (:mod:`apps.delivery.metrics.instruments`), and the
  task's ``on_dead_letter`` hook runs;
- drops a delivery whose failure is one of the task's ``discard_on`` exceptions (the
  message names something that does not exist), logging ``discard_message``;
- with an ``idempotency_key``, runs the task body at most once per key, however many
  times and however concurrently its message is delivered.

Example::

    @shared_task(
        name="apps.payments.tasks.process_payment",
        idempotency_key="payment:%(payment_id)s",
        on_dead_letter=services.payment_hold,
    )
    def process_payment(payment_id):
        services.payment_process(payment_id=payment_id)
"""

from __future__ import annotations

import inspect
import logging
import math
from datetime import timedelta

from celery.contrib.django.task import DjangoTask
from celery.exceptions import Ignore, Reject, Retry
from django.conf import settings

from .failures import failure_forget, failure_record, is_transient
from .idempotency import (
    Claim,
    idempotency_claim,
    idempotency_complete,
    idempotency_holder,
    idempotency_release,
)
from .logs.context import CORRELATION_HEADER
from .metrics import instruments
from .models import TaskFailure
from .outbox import enqueue_on_commit
from .periodic import SLOT_HEADER, slot_key
from .retries import backoff_delay

logger = logging.getLogger(__name__)

#: Exceptions by which a task asks Celery itself for something (retry, ignore, reject).
CONTROL_FLOW = (Retry, Ignore, Reject)


class DeliveryTask(DjangoTask):
    """Task class with retry policy, failure classification and idempotency keys."""

    #: A final failure rejects the message without requeue: on RabbitMQ the broker
    #: dead-letters it. (Celery 5.7 reads task_acks_on_failure/_on_timeout from this too.)
    acks_on_failure_or_timeout = False

    #: Further exception types this task treats as transient.
    retry_for: tuple[type[BaseException], ...] = ()

    #: Exception types that mean the message names something that does not exist: the
    #: delivery is dropped (and acknowledged) with ``discard_message``, neither retried
    #: nor dead-lettered.
    discard_on: tuple[type[BaseException], ...] = ()
    #: Logged (error) when a delivery is discarded; %-style over the task's arguments,
    #: plus ``task``, ``id`` and ``error``.
    discard_message = "%(task)s[%(id)s] discarded: %(error)s"

    #: Called once the task has failed for good, as its message goes to the dead-letter
    #: queue: with the task's arguments by name and ``error`` (the exception), e.g. to
    #: leave the work it stands for to an operator. ``None``: nothing to do.
    on_dead_letter = None

    #: The unit of work a call performs, so duplicates can be recognised: a %-style
    #: template over the task's arguments by name (``"payment:%(payment_id)s"``), or
    #: a callable taking them as keyword arguments. ``None``: the task is not idempotent.
    idempotency_key = None

    #: Logged (warning) when a delivery is skipped because its key's work is done;
    #: %-style over the task's arguments, plus ``task`` and ``key``.
    duplicate_message = "%(task)s skipped: %(key)s is already done."
    #: Logged (info) when a delivery is skipped because another delivery is doing its
    #: key's work right now; as ``duplicate_message``, plus ``id`` and ``holder``
    #: (the task ids of this delivery and of the one at work).
    busy_message = "%(task)s[%(id)s] skipped: %(key)s is being worked on by task %(holder)s."

    def delay_on_commit(self, *args, **kwargs) -> str:
        """Send this task once the current transaction commits, through the transactional
        outbox (:mod:`apps.delivery.outbox`): stored with the transaction, it reaches the
        broker even when the broker is down at commit time. Returns the task id."""
        return enqueue_on_commit(self.name, *args, **kwargs)

    def __call__(self, *args, **kwargs):
        request = self.request
        if request.called_directly:
            return super().__call__(*args, **kwargs)
        key = self.idempotency_key_for(args, kwargs)
        try:
            if key is not None and not self._claim(key, args, kwargs):
                return None
            result = super().__call__(*args, **kwargs)
        except CONTROL_FLOW:
            self._release(key)
            raise
        except self.discard_on as exc:
            self._discard(exc, args, kwargs)
            result = None
        except Exception as exc:
            self._release(key)
            if self.will_retry(exc):
                delay = self.retry_delay()
                self._record_failure(exc, final=False, retry_in=delay)
                raise self.retry(
                    exc=exc,
                    countdown=delay,
                    max_retries=self.retry_limit(),
                    # the delivery's own choice (a caller may ask for a result), which
                    # Celery 5.6 does not carry over to the retry by itself
                    ignore_result=self.request.ignore_result,
                ) from None
            self._record_failure(exc, final=True)
            instruments.dead_lettered(TaskFailure.Reason.FAILED, task_name=self.name)
            self.dead_lettered(exc, args, kwargs)
            raise
        self._record_success(key)
        return result

    def _record_success(self, key: str | None) -> None:
        # The work is done, and the message will be acknowledged: a database error now
        # must not turn the success into a failure. An idempotency record left running
        # only makes duplicates wait out its lease.
        request = self.request
        try:
            if key is not None:
                idempotency_complete(key=key, owner=request.id)
            if request.retries or getattr(request, "replayed", None):
                failure_forget(task_id=request.id)
        except Exception:
            logger.exception("%s[%s] succeeded, but recording it failed.", self.name, request.id)

    # -- failures --------------------------------------------------------------

    def _discard(self, exc: BaseException, args, kwargs) -> None:
        facts = {**self._arguments(args, kwargs), "task": self.name, "id": self.request.id}
        logger.error(self.discard_message, {**facts, "error": exc})

    def dead_lettered(self, exc: BaseException, args, kwargs) -> None:
        """Run the task's ``on_dead_letter`` hook for a call whose message goes to the
        dead-letter queue (a final failure here, or the delivery limit in the consumer)."""
        hook = self._own("on_dead_letter", None)
        if hook is None:
            return
        try:
            hook(**self._arguments(args, kwargs), error=exc)
        except Exception:
            logger.exception("%s: on_dead_letter failed for %r %r.", self.name, args, kwargs)

    def _record_failure(
        self, exc: BaseException, *, final: bool, retry_in: float | None = None
    ) -> None:
        request = self.request
        if final:
            logger.error(
                "%s[%s] failed for good after %d retries (%s: %s); its message goes to the "
                "dead-letter queue.",
                self.name,
                request.id,
                request.retries,
                type(exc).__name__,
                exc,
            )
        try:
            failure_record(
                task_id=request.id,
                task_name=self.name,
                args=list(request.args or ()),
                kwargs=dict(request.kwargs or {}),
                routing_key=(request.delivery_info or {}).get("routing_key", ""),
                exc=exc,
                retries=request.retries,
                correlation_id=getattr(request, CORRELATION_HEADER, "") or "",
                final=final,
                permanent=not is_transient(exc, extra=self.retry_for),
                retry_in=retry_in,
            )
        except Exception:
            # The message is dead-lettered all the same; only the facts are missing.
            logger.exception("Could not record the failure of %s[%s].", self.name, request.id)

    # -- retries ---------------------------------------------------------------

    def retry_limit(self) -> int:
        """Retries allowed after a transient failure."""
        return self._own("max_retries", settings.TASK_MAX_RETRIES)

    def retry_delay(self) -> int:
        """Seconds to wait before the next retry: exponential, capped, jittered.

        Whole seconds, at least one: RabbitMQ's delayed delivery (used for countdowns
        on quorum queues) counts whole seconds and refuses a countdown below one.
        """
        delay = backoff_delay(
            self.request.retries,
            base=self._own("retry_backoff", settings.TASK_RETRY_BACKOFF_SECONDS),
            cap=self._own("retry_backoff_max", settings.TASK_RETRY_BACKOFF_MAX_SECONDS),
        )
        return max(1, math.ceil(delay))

    def will_retry(self, exc: BaseException) -> bool:
        """Return True if ``exc`` is transient and this run has a retry left."""
        return is_transient(exc, extra=self.retry_for) and self.request.retries < self.retry_limit()

    def _own(self, attribute: str, default):
        # Only a value given to this task (decorator option or subclass attribute)
        # overrides the project's policy; Celery's class-wide defaults do not.
        for cls in type(self).__mro__:
            if cls is DeliveryTask:
                return default
            if attribute in cls.__dict__:
                return cls.__dict__[attribute]
        return default

    # -- idempotency -----------------------------------------------------------

    def idempotency_key_for(self, args, kwargs) -> str | None:
        """Return this call's idempotency key, or None if the task has none.

        A periodic task sent by beat without a key of its own is idempotent per slot.
        """
        if self.idempotency_key is None:
            slot = getattr(self.request, SLOT_HEADER, None)
            return slot_key(self.name, slot) if slot else None
        arguments = self._arguments(args, kwargs)
        if callable(self.idempotency_key):
            return str(self.idempotency_key(**arguments))
        return self.idempotency_key % arguments

    def idempotency_lease(self) -> timedelta:
        """How long a claim holds: the hard time limit plus a minute."""
        return timedelta(seconds=(self.time_limit or settings.TASK_TIME_LIMIT_SECONDS) + 60)

    def _arguments(self, args, kwargs) -> dict:
        bound = inspect.signature(self.run).bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def _claim(self, key: str, args, kwargs) -> bool:
        request = self.request
        claim = idempotency_claim(
            key=key,
            owner=request.id,
            attempt=request.retries,
            lease=self.idempotency_lease(),
            task_name=self.name,
            redelivered=bool((request.delivery_info or {}).get("redelivered")),
        )
        if claim is Claim.ACQUIRED:
            return True
        facts = {**self._arguments(args, kwargs), "task": self.name, "key": key}
        if claim is Claim.DONE:
            logger.warning(self.duplicate_message, facts)
        else:
            facts.update(id=request.id, holder=idempotency_holder(key=key))
            logger.info(self.busy_message, facts)
        return False

    def _release(self, key: str | None) -> None:
        # Best effort: a record left behind is taken over by this task's retry (a later
        # attempt) or, after its lease, by anyone.
        if key is None:
            return
        try:
            idempotency_release(key=key, owner=self.request.id)
        except Exception:
            logger.exception("Could not release idempotency key %s.", key)
