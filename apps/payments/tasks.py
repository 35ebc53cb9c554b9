"""Payment tasks: delivery concerns only; the business logic is in services."""

import logging

from celery import shared_task
from django.core.exceptions import ValidationError

from . import services
from .models import Payment

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="apps.payments.tasks.process_payment",
    idempotency_key="payment:%(payment_id)s",
    duplicate_message="Payment %(payment_id)s already processed.",
)
def process_payment(self, payment_id):
    """Charge a payment once, however often and however concurrently it is delivered."""
    try:
        services.payment_process(payment_id=payment_id)
    except (Payment.DoesNotExist, ValidationError):
        # Nothing to retry: the id names no payment.
        logger.error("Payment %s does not exist; nothing to process.", payment_id)
    except Exception as exc:
        if not self.will_retry(exc):
            # Failed for good: a declined payment is already failed; any other is left
            # to an operator, and its message goes to the dead-letter queue.
            services.payment_hold(payment_id=payment_id, error=exc)
        raise
