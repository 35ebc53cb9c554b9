"""Payment business logic: creating payments and charging them exactly once.

Charging is safe to repeat. The payment row is locked while its status moves on, a
processed or failed payment is never charged again, and the gateway is called with the
payment's id as its idempotency key, so even a worker that dies between the gateway's
answer and the status update cannot cause a second charge.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.delivery.outbox import enqueue_on_commit

from . import gateway
from .models import Payment

logger = logging.getLogger(__name__)

#: The task that charges a payment (``apps.payments.tasks``), by its stable name.
PROCESS_PAYMENT = "apps.payments.tasks.process_payment"


class IdempotencyKeyReused(Exception):
    """A client sent an Idempotency-Key again, with different payment details."""


def payment_create(
    *,
    amount: Decimal,
    currency: str,
    source: str = "tok_ok",
    idempotency_key: str | None = None,
) -> tuple[Payment, bool]:
    """Create a payment and enqueue its processing once the transaction commits.

    With an ``idempotency_key`` already used for the same details, return that payment
    instead (and ``False``). Raises :class:`IdempotencyKeyReused` if the details differ.
    """
    if idempotency_key:
        existing = Payment.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _same_request(existing, amount, currency, source), False
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                amount=amount, currency=currency, source=source, idempotency_key=idempotency_key
            )
            # Sent only if the row commits: a worker never looks for a payment that
            # does not exist (yet), and a rolled-back payment is never processed.
            enqueue_on_commit(PROCESS_PAYMENT, str(payment.id))
    except IntegrityError:
        if not idempotency_key:
            raise
        # A concurrent request with the same key created it first.
        existing = Payment.objects.get(idempotency_key=idempotency_key)
        return _same_request(existing, amount, currency, source), False
    logger.info("Payment %s created: %s %s from %s.", payment.id, payment.amount, currency, source)
    return payment, True


def payment_process(*, payment_id: str) -> Payment:
    """Charge a payment unless it has been processed or has failed already.

    Raises ``Payment.DoesNotExist``; :class:`gateway.GatewayUnavailable` (transient: the
    payment stays ``processing``, ready for a retry); :class:`gateway.CardDeclined`
    (permanent: the payment is ``failed``).
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(id=payment_id)
        if payment.status == Payment.Status.PROCESSED:
            logger.warning("Payment %s already processed.", payment.id)
            return payment
        if payment.status == Payment.Status.FAILED:
            logger.warning(
                "Payment %s failed earlier (%s); not charging it.", payment.id, payment.last_error
            )
            return payment
        payment.status = Payment.Status.PROCESSING
        payment.attempts += 1
        payment.save(update_fields=["status", "attempts", "updated_at"])

    # The gateway is an external system: no transaction or lock is held across the call.
    logger.info("Charging payment %s (attempt %d).", payment.id, payment.attempts)
    try:
        charge = gateway.charge(
            idempotency_key=str(payment.id),
            amount=payment.amount,
            currency=payment.currency,
            source=payment.source,
        )
    except gateway.CardDeclined as exc:
        _update(payment, status=Payment.Status.FAILED, last_error=str(exc))
        logger.warning("Payment %s failed: %s", payment.id, exc)
        raise
    except gateway.GatewayUnavailable as exc:
        _update(payment, last_error=str(exc))
        raise

    _update(
        payment,
        status=Payment.Status.PROCESSED,
        charge_id=charge.id,
        last_error="",
        processed_at=timezone.now(),
    )
    logger.info("Payment %s processed: charge %s.", payment.id, charge.id)
    return payment


def payment_hold(*, payment_id: str, error: BaseException) -> None:
    """Leave a payment whose processing failed for good, but not by a decline, to an
    operator (it may still succeed later): its retries ran out, or its task kept killing
    its worker. A declined payment stays failed."""
    updated = Payment.objects.filter(
        id=payment_id, status__in=[Payment.Status.PENDING, Payment.Status.PROCESSING]
    ).update(
        status=Payment.Status.AWAITING_OPERATOR,
        last_error="%s: %s" % (type(error).__name__, error),
        updated_at=timezone.now(),
    )
    if updated:
        logger.error(
            "Payment %s awaits an operator: %s: %s", payment_id, type(error).__name__, error
        )


def payment_requeue_pending(*, pending_since, excluding: Collection[str] = ()) -> int:
    """Enqueue again the payments still pending since before ``pending_since``, except
    those whose ids are in ``excluding`` (their task waits for an operator in the
    dead-letter queue). Returns how many were enqueued.

    Such a payment's task never reached the broker (the process died between the
    commit and the publish, say).
    """
    stuck = Payment.objects.filter(status=Payment.Status.PENDING, created_at__lt=pending_since)
    requeued = 0
    for payment in stuck:
        if str(payment.id) in excluding:
            continue
        enqueue_on_commit(PROCESS_PAYMENT, str(payment.id))
        logger.warning(
            "Payment %s still pending since %s: its processing is enqueued again.",
            payment.id,
            payment.created_at.isoformat(),
        )
        requeued += 1
    return requeued


def _update(payment: Payment, **changes) -> None:
    for name, value in changes.items():
        setattr(payment, name, value)
    payment.save(update_fields=[*changes, "updated_at"])


def _same_request(payment: Payment, amount: Decimal, currency: str, source: str) -> Payment:
    if (payment.amount, payment.currency, payment.source) != (amount, currency, source):
        raise IdempotencyKeyReused(
            "Idempotency-Key was used for payment %s with other details." % payment.id
        )
    return payment
