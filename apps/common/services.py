"""Housekeeping services run by periodic tasks."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from apps.delivery.failures import failure_facts_expire
from apps.delivery.idempotency import idempotency_expire
from apps.delivery.outbox import outbox_expire


def cleanup_run() -> dict[str, int]:
    """Delete the rows that have outlived their retention; return the counts.

    Each app keeps its other periodic work to itself: the dead letters' retention
    (``apps.delivery.tasks``) and the pending payments' re-enqueue
    (``apps.payments.tasks``). Task results need nothing here: Redis expires them by
    itself (``result_expires``) and ``rpc://`` keeps none.
    """
    now = timezone.now()
    days = timedelta(days=1)
    return {
        "expired_sessions": Session.objects.filter(expire_date__lt=now).delete()[0],
        "idempotency_records": idempotency_expire(
            older_than=now - settings.IDEMPOTENCY_RETENTION_DAYS * days
        ),
        "failure_facts": failure_facts_expire(
            older_than=now - settings.FAILURE_RETENTION_DAYS * days
        ),
        "outbox_messages": outbox_expire(older_than=now - settings.OUTBOX_RETENTION_DAYS * days),
    }
