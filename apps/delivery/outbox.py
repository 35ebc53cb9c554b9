"""The transactional outbox: a task enqueued in a transaction reaches the broker once the
transaction commits, even when the broker is down at that moment.

:func:`enqueue_on_commit` (and every task's ``delay_on_commit``) writes the task message
as a row (:class:`OutboxMessage`) in the current transaction, so the business change and
its task commit together or not at all. Once it commits, the same process publishes the
message at once, waiting on the broker no longer than ``ENQUEUE_TIMEOUT_SECONDS``: a web
request never hangs on a broker. If that fails (the broker is down, the process dies),
the relay that runs in every worker (:func:`relay_due`) publishes it later: oldest first,
with the row's task id, retrying with backoff, and marks it sent only once the broker has
confirmed it (publisher confirms on RabbitMQ, Redis's reply).

Delivery is at least once: a message whose confirmation was lost is published again,
with the same task id, and the tasks' idempotency absorbs the repeat.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import current_app
from celery.backends.rpc import RPCBackend
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from .logs.context import CORRELATION_HEADER, current_correlation_id
from .models import OutboxMessage
from .retries import backoff_delay

logger = logging.getLogger(__name__)

#: How long a publisher holds a message it claimed before another may publish it.
CLAIM_SECONDS = 10
#: The relay's backoff after a failed publication: 1 s, doubling, up to 10 s.
BACKOFF_SECONDS, BACKOFF_MAX_SECONDS = 1.0, 10.0


def enqueue_on_commit(task_name: str, *args, **kwargs) -> str:
    """Send task ``task_name`` with these arguments once the current transaction commits
    (at once outside a transaction); return its task id.

    The message is stored in the transaction; a rolled-back transaction sends nothing.
    """
    correlation_id = current_correlation_id()
    message = OutboxMessage.objects.create(
        task_name=task_name,
        args=list(args),
        kwargs=kwargs,
        headers={CORRELATION_HEADER: correlation_id} if correlation_id else {},
        claimed_until=timezone.now() + timedelta(seconds=CLAIM_SECONDS),
    )
    transaction.on_commit(lambda: publish_now(message))
    return str(message.task_id)


def publish_now(message: OutboxMessage) -> bool:
    """Publish a message this process just committed; on failure leave it to the relay."""
    try:
        publish(message)
    except Exception as exc:
        logger.warning(
            "%s[%s] waits in the outbox: the broker did not take it (%s: %s); a worker's "
            "relay sends it.",
            message.task_name,
            message.task_id,
            type(exc).__name__,
            exc,
        )
        OutboxMessage.objects.filter(pk=message.pk).update(
            claimed_until=None, attempts=F("attempts") + 1, last_error=_error(exc)
        )
        return False
    OutboxMessage.objects.filter(pk=message.pk).update(sent_at=timezone.now(), claimed_until=None)
    return True


#: A publish on the process's pooled broker connection is tried again once, on a new
#: connection, when the pooled one turns out broken (the broker restarted since).
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0}


def publish(message: OutboxMessage) -> None:
    """Publish ``message`` once, waiting on the broker about ``ENQUEUE_TIMEOUT_SECONDS``
    at most; return once the broker has confirmed it, or raise."""
    app = current_app
    task = app.tasks[message.task_name]
    timeout = settings.ENQUEUE_TIMEOUT_SECONDS
    options = {}
    if isinstance(app.backend, RPCBackend):
        # rpc:// results go back to the publisher, which never reads them.
        options["ignore_result"] = True
    # The producer pool's connection, as delay() uses: no connection set up per message.
    task.apply_async(
        message.args,
        message.kwargs,
        task_id=str(message.task_id),
        headers=dict(message.headers),
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
        timeout=timeout,
        confirm_timeout=timeout,
        **options,
    )


def relay_due(*, limit: int = 100) -> int:
    """Publish the messages that are due, oldest first, until one fails; return how
    many were sent. Each is claimed first, so concurrent relays never take the same one."""
    now = timezone.now()
    due = (
        Q(sent_at__isnull=True)
        & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    )
    sent = 0
    queue = OutboxMessage.objects.filter(due).order_by("id").values_list("pk", flat=True)
    for pk in list(queue[:limit]):
        claimed_until = now + timedelta(seconds=CLAIM_SECONDS)
        if not OutboxMessage.objects.filter(due, pk=pk).update(claimed_until=claimed_until):
            continue  # another relay took it
        message = OutboxMessage.objects.get(pk=pk)
        try:
            publish(message)
        except Exception as exc:
            _postpone(message, exc)
            break  # the broker is likely down: the rest waits, in order
        OutboxMessage.objects.filter(pk=pk).update(sent_at=timezone.now(), claimed_until=None)
        logger.info("%s[%s] relayed from the outbox.", message.task_name, message.task_id)
        sent += 1
    return sent


def outbox_pending_arguments(task_name: str) -> list:
    """The arguments of the messages of one task that wait in the outbox."""
    return list(
        OutboxMessage.objects.filter(task_name=task_name, sent_at__isnull=True).values_list(
            "args", flat=True
        )
    )


def outbox_backlog() -> tuple[int, float]:
    """How many messages wait for the broker, and the age in seconds of the oldest (0
    when none waits)."""
    found = OutboxMessage.objects.filter(sent_at__isnull=True).aggregate(
        count=Count("id"), oldest=Min("created_at")
    )
    if found["oldest"] is None:
        return found["count"], 0.0
    return found["count"], max(0.0, (timezone.now() - found["oldest"]).total_seconds())


def outbox_expire(*, older_than: datetime) -> int:
    """Delete the messages sent before ``older_than``."""
    deleted, _ = OutboxMessage.objects.filter(sent_at__lt=older_than).delete()
    return deleted


def _postpone(message: OutboxMessage, exc: Exception) -> None:
    delay = backoff_delay(message.attempts, base=BACKOFF_SECONDS, cap=BACKOFF_MAX_SECONDS)
    OutboxMessage.objects.filter(pk=message.pk).update(
        claimed_until=None,
        attempts=F("attempts") + 1,
        last_error=_error(exc),
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )
    logger.warning(
        "%s[%s] stays in the outbox: %s; next attempt in %.0f s.",
        message.task_name,
        message.task_id,
        _error(exc),
        delay,
    )


def _error(exc: Exception) -> str:
    return "%s: %s" % (type(exc).__name__, exc)
