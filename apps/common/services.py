"""Housekeeping services run by periodic tasks."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from apps.delivery.dead_letters import dead_letters_expire, failure_facts_expire
from apps.delivery.idempotency import idempotency_expire
from apps.payments.services import payment_requeue_pending

logger = logging.getLogger(__name__)


def cleanup_run() -> dict[str, int]:
    """Delete what has outlived its retention, re-enqueue stuck payments; return the counts.

    Task results need nothing here: Redis expires them by itself (``result_expires``)
    and ``rpc://`` keeps none.
    """
    now = timezone.now()
    days = timedelta(days=1)
    counts = {
        "expired_sessions": Session.objects.filter(expire_date__lt=now).delete()[0],
        "idempotency_records": idempotency_expire(
            older_than=now - settings.IDEMPOTENCY_RETENTION_DAYS * days
        ),
        "failure_facts": failure_facts_expire(
            older_than=now - settings.FAILURE_RETENTION_DAYS * days
        ),
        "dead_letters": 0,
        "requeued_payments": payment_requeue_pending(
            pending_since=now - timedelta(seconds=settings.PAYMENT_PENDING_TIMEOUT_SECONDS)
        ),
    }
    if settings.DEAD_LETTER_RETENTION_DAYS is not None:
        from config import celery_app

        with celery_app.connection_for_write() as connection:
            counts["dead_letters"] = dead_letters_expire(
                connection, older_than=now - settings.DEAD_LETTER_RETENTION_DAYS * days
            )
    return counts
