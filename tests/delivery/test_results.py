"""Results are opt-in: a task stores one only if it says so, or its caller asks."""

import pytest

from apps.payments.models import Payment
from apps.payments.tasks import process_payment
from apps.users.tasks import add
from config import celery_app
from tests.servers import wait_until


def stored(task_id: str) -> bool:
    """Whether the Redis result backend holds anything for ``task_id``."""
    backend = celery_app.backend
    return backend.get(backend.get_key_for_task(task_id)) is not None


def test_only_tasks_that_ask_keep_a_result():
    assert process_payment.ignore_result is True
    assert add.ignore_result is False


# rpc:// (the RabbitMQ default) stores nothing: a result is a message to its caller.
@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_a_task_that_keeps_no_result_writes_none_and_add_writes_its_own(
    broker, start_worker, make_payment
):
    start_worker()
    payment = make_payment()
    ignored = process_payment.delay(str(payment.id))
    wait_until(
        lambda: Payment.objects.get(pk=payment.pk).status == Payment.Status.PROCESSED,
        timeout=30,
        what="the payment processed",
    )
    kept = add.delay(5, 10)
    asked = process_payment.apply_async((str(payment.id),), ignore_result=False)
    assert kept.get(timeout=30) == 15
    assert asked.get(timeout=30) is None
    assert stored(kept.id)
    assert stored(asked.id)
    assert not stored(ignored.id)
