"""Payment tasks: delivery concerns only; the business logic is in services."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.delivery.dead_letters import dead_letter_box
from apps.delivery.outbox import outbox_pending_arguments

from . import services
from .models import Payment


@shared_task(
    name=services.PROCESS_PAYMENT,
    idempotency_key="payment:%(payment_id)s",
    duplicate_message="Payment %(payment_id)s already processed.",
    # The id names no payment: nothing to retry, nothing for an operator.
    discard_on=(Payment.DoesNotExist, ValidationError),
    discard_message="Payment %(payment_id)s does not exist; nothing to process.",
    # Failed for good: a declined payment is failed already; any other is left to an
    # operator (awaiting_operator) while its message waits in the dead-letter queue.
    on_dead_letter=services.payment_hold,
)
def process_payment(payment_id):
    """Charge a payment once, however often and however concurrently it is delivered."""
    services.payment_process(payment_id=payment_id)


@shared_task(name="apps.payments.tasks.requeue_pending_payments")
def requeue_pending_payments():
    """Enqueue again the payments pending for longer than ``PAYMENT_PENDING_TIMEOUT_SECONDS``
    (their task never reached the broker), except those whose task waits in the outbox
    for the broker or in the dead-letter queue for an operator. A backstop: the outbox
    delivers every task enqueued on commit. Return how many were enqueued."""
    with dead_letter_box() as box:
        waiting = box.arguments_of(services.PROCESS_PAYMENT)
    waiting += outbox_pending_arguments(services.PROCESS_PAYMENT)
    return services.payment_requeue_pending(
        pending_since=timezone.now() - timedelta(seconds=settings.PAYMENT_PENDING_TIMEOUT_SECONDS),
        excluding={str(args[0]) for args in waiting if isinstance(args, list) and args},
    )
