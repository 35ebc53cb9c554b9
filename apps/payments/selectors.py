"""Payment read models."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import Q

from . import gateway
from .models import Payment


def payment_list(
    *,
    status: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int,
) -> list[Payment]:
    """Up to ``limit`` payments, newest first, that match the filters and come after
    the payment ``after`` names (its creation time and id) in that order."""
    payments = Payment.objects.order_by("-created_at", "-id")
    if status is not None:
        payments = payments.filter(status=status)
    if created_after is not None:
        payments = payments.filter(created_at__gte=created_after)
    if created_before is not None:
        payments = payments.filter(created_at__lt=created_before)
    if after is not None:
        created_at, payment_id = after
        payments = payments.filter(
            Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=payment_id)
        )
    return list(payments[:limit])


def payment_detail(*, payment_id: uuid.UUID) -> dict | None:
    """What the API shows of one payment, with the gateway's count of its charges; None
    if there is no such payment."""
    payment = Payment.objects.filter(id=payment_id).first()
    if payment is None:
        return None
    return {
        "id": payment.id,
        "amount": payment.amount,
        "currency": payment.currency,
        "source": payment.source,
        "status": payment.status,
        "attempts": payment.attempts,
        "last_error": payment.last_error,
        "charges": gateway.charge_count(idempotency_key=str(payment.id)),
        "charge_id": payment.charge_id,
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
        "processed_at": payment.processed_at,
    }
