"""Payments, and the simulated gateway's ledger."""

import uuid

from django.db import models


class Payment(models.Model):
    """A charge to make once. Its status:

    ``pending`` -> ``processing`` -> ``processed`` | ``failed``, and
    ``processing`` -> ``awaiting_operator`` when its task failed for good without a
    decline (transient failures used up the retry budget, say). Only a replay takes it
    back to ``processing``: the payment can still succeed then. ``processed`` and
    ``failed`` are final: a payment is never charged twice, and a declined one never.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"
        AWAITING_OPERATOR = "awaiting_operator", "Awaiting operator"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    #: The payment method, as a gateway token (tok_ok, tok_decline, tok_flaky).
    source = models.CharField(max_length=64, default="tok_ok")
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    #: Times processing started (deliveries that reached the gateway call).
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    #: The client's Idempotency-Key: the same key always names the same payment.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    #: The gateway's id of the accepted charge.
    charge_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="payment_amount_positive"
            ),
        ]

    def __str__(self):
        return "%s %s %s (%s)" % (self.id, self.amount, self.currency, self.status)


class GatewayRequest(models.Model):
    """The simulated gateway's ledger: every request it received, and its outcome.

    Stands in for the payment provider's own records. Rows with outcome ``charged``
    are the accepted charges, at most one per idempotency key.
    """

    class Outcome(models.TextChoices):
        CHARGED = "charged", "Charged"
        REPLAYED = "replayed", "Replayed (already charged)"
        DECLINED = "declined", "Declined"
        UNAVAILABLE = "unavailable", "Unavailable (transient)"

    idempotency_key = models.CharField(max_length=255, db_index=True)
    charge_id = models.CharField(max_length=64, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    source = models.CharField(max_length=64)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=models.Q(outcome="charged"),
                name="gateway_one_charge_per_key",
            ),
        ]

    def __str__(self):
        return "%s %s" % (self.idempotency_key, self.outcome)
