"""Payment services: creation enqueues on commit; processing charges exactly once."""

from decimal import Decimal

import pytest
from django.db import transaction

from apps.delivery.models import OutboxMessage
from apps.payments import gateway, services
from apps.payments.models import Payment
from apps.payments.tasks import process_payment


def charges(payment):
    return gateway.charge_count(idempotency_key=str(payment.id))


@pytest.mark.django_db
def test_creating_a_payment_enqueues_its_processing_when_the_transaction_commits(
    django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr("apps.delivery.outbox.publish", sent.append)
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        payment, created = services.payment_create(amount=Decimal("12.50"), currency="EUR")
        # the task is stored with the payment, and nothing is sent before the commit
        (stored,) = OutboxMessage.objects.all()
        assert (stored.task_name, stored.args) == (process_payment.name, [str(payment.id)])
        assert sent == []
    # then
    assert created
    assert len(callbacks) == 1
    assert [(message.task_name, message.args) for message in sent] == [
        ("apps.payments.tasks.process_payment", [str(payment.id)])
    ]
    stored.refresh_from_db()
    assert stored.sent_at is not None


class RollBack(Exception):
    pass


def create_then_fail():
    with transaction.atomic():
        services.payment_create(amount=Decimal("1.00"), currency="EUR")
        raise RollBack


@pytest.mark.django_db
def test_a_rolled_back_payment_enqueues_nothing(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RollBack):
        create_then_fail()
    assert callbacks == []
    assert not Payment.objects.exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_the_same_idempotency_key_returns_the_same_payment():
    first, created = services.payment_create(
        amount=Decimal("5.00"), currency="EUR", idempotency_key="order-17"
    )
    again, created_again = services.payment_create(
        amount=Decimal("5.00"), currency="EUR", idempotency_key="order-17"
    )
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert Payment.objects.count() == 1
    with pytest.raises(services.IdempotencyKeyReused):
        services.payment_create(amount=Decimal("6.00"), currency="EUR", idempotency_key="order-17")


@pytest.mark.django_db(transaction=True)
def test_processing_charges_once_and_a_repeat_charges_nothing(make_payment, caplog):
    payment = make_payment()
    services.payment_process(payment_id=payment.id)
    services.payment_process(payment_id=payment.id)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PROCESSED
    assert payment.attempts == 1
    assert charges(payment) == 1
    assert "Payment %s already processed." % payment.id in caplog.messages


@pytest.mark.django_db(transaction=True)
def test_a_charge_whose_answer_was_lost_is_not_charged_again(make_payment):
    # given: the gateway charged, but the worker died before recording it
    payment = make_payment()
    gateway.charge(
        idempotency_key=str(payment.id), amount=payment.amount, currency="EUR", source="tok_ok"
    )
    Payment.objects.filter(id=payment.id).update(status=Payment.Status.PROCESSING, attempts=1)
    # when: the redelivered task processes it again
    services.payment_process(payment_id=payment.id)
    # then
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PROCESSED
    assert payment.attempts == 2
    assert charges(payment) == 1


@pytest.mark.django_db(transaction=True)
def test_a_decline_fails_the_payment_for_good(make_payment):
    payment = make_payment(source="tok_decline")
    with pytest.raises(gateway.CardDeclined):
        services.payment_process(payment_id=payment.id)
    services.payment_process(payment_id=payment.id)  # a later delivery charges nothing
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert payment.attempts == 1
    assert "declined" in payment.last_error
    assert charges(payment) == 0


@pytest.mark.django_db(transaction=True)
def test_a_transient_failure_leaves_the_payment_processing_for_a_retry(make_payment, settings):
    payment = make_payment()
    settings.GATEWAY_OUTAGE = True
    with pytest.raises(gateway.GatewayUnavailable):
        services.payment_process(payment_id=payment.id)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PROCESSING
    assert "503" in payment.last_error


@pytest.mark.django_db(transaction=True)
def test_a_payment_held_for_an_operator_can_still_succeed(make_payment):
    payment = make_payment(status=Payment.Status.PROCESSING)
    services.payment_hold(payment_id=payment.id, error=gateway.GatewayUnavailable("down"))
    payment.refresh_from_db()
    assert payment.status == Payment.Status.AWAITING_OPERATOR
    services.payment_process(payment_id=payment.id)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PROCESSED
    assert charges(payment) == 1


@pytest.mark.django_db
def test_processing_a_missing_payment_raises_does_not_exist():
    with pytest.raises(Payment.DoesNotExist):
        services.payment_process(payment_id="6f1c2a8e-0000-4000-8000-000000000000")
