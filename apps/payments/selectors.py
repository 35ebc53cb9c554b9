"""Payment read models."""

from . import gateway
from .models import Payment


def payment_detail(*, payment: Payment) -> dict:
    """Return what the API shows of a payment, with the gateway's count of its charges."""
    return {
        "id": str(payment.id),
        "amount": str(payment.amount),
        "currency": payment.currency,
        "source": payment.source,
        "status": payment.status,
        "attempts": payment.attempts,
        "last_error": payment.last_error,
        "charges": gateway.charge_count(idempotency_key=str(payment.id)),
        "charge_id": payment.charge_id,
        "created_at": payment.created_at.isoformat(),
        "updated_at": payment.updated_at.isoformat(),
        "processed_at": payment.processed_at.isoformat() if payment.processed_at else None,
    }
