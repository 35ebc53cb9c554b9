"""The transactional outbox and bounded enqueueing: a broker outage never holds a web
request, and loses no task enqueued on commit."""

import json
import time
import urllib.request
from decimal import Decimal

import pytest
from django.db import transaction
from kombu.exceptions import OperationalError

from apps.delivery.models import OutboxMessage
from apps.payments import gateway, services
from apps.payments.models import Payment
from apps.users.tasks import add

#: The relay looks for work often, so a test need not wait.
QUICK_RELAY = {"OUTBOX_RELAY_INTERVAL_SECONDS": "0.2"}


@pytest.fixture
def broker(own_broker):
    """A broker these tests stop and start."""
    return own_broker


def post_payment(web) -> tuple[dict, float]:
    request = urllib.request.Request(
        web.url + "/api/payments/",
        data=json.dumps({"amount": "9.50", "currency": "EUR"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response), time.monotonic() - started


def test_a_payment_posted_while_the_broker_is_down_is_answered_at_once_and_processed_later(
    broker, start_worker, start_web
):
    # given: the stack, then the broker stops
    worker = start_worker(env=QUICK_RELAY)
    web = start_web()
    broker.server.stop()
    # when: a client posts a payment
    body, seconds = post_payment(web)
    # then: the request is answered within the bound, the payment pending, its task kept
    assert seconds < 5
    assert body["status"] == "pending"
    (message,) = OutboxMessage.objects.all()
    assert message.sent_at is None
    assert message.args == [body["id"]]
    assert message.last_error
    # and once the broker is back, a worker's relay sends it, and it is processed once
    broker.server.start()
    worker.wait_for(r"process_payment\[%s\] relayed from the outbox" % message.task_id, timeout=60)
    worker.wait_for(r"Payment %s processed" % body["id"], timeout=60)
    payment = Payment.objects.get(id=body["id"])
    assert payment.status == Payment.Status.PROCESSED
    assert gateway.charge_count(idempotency_key=str(payment.id)) == 1
    message.refresh_from_db()
    assert message.sent_at is not None


def test_a_task_enqueued_on_commit_is_sent_at_once_when_the_broker_is_up(broker, start_worker):
    worker = start_worker()
    with transaction.atomic():
        payment, _ = services.payment_create(amount=Decimal("4.00"), currency="EUR")
        assert OutboxMessage.objects.get().sent_at is None
    worker.wait_for(r"Payment %s processed" % payment.id)
    message = OutboxMessage.objects.get()
    assert message.sent_at is not None
    assert message.attempts == 0
    assert not worker.matching("relayed from the outbox")


def test_a_plain_delay_while_the_broker_is_down_fails_within_the_bound(broker):
    broker.server.stop()
    started = time.monotonic()
    # (on Redis, subscribing to the result fails first: Celery raises a RuntimeError)
    with pytest.raises((OperationalError, RuntimeError)):
        add.delay(1, 2)
    assert time.monotonic() - started < 5
