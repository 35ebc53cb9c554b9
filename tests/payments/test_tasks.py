"""process_payment on real brokers and real worker processes: charged exactly once."""

import json
import subprocess
import sys
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.delivery.models import OutboxMessage, TaskFailure
from apps.payments import gateway, services
from apps.payments.models import Payment
from apps.payments.tasks import process_payment, requeue_pending_payments
from apps.users.tasks import add
from tests.processes import BASE_DIR
from tests.servers import wait_until

#: Short retry delays, so retries happen within a test.
FAST_RETRIES = {"TASK_RETRY_BACKOFF_SECONDS": "1", "TASK_RETRY_BACKOFF_MAX_SECONDS": "8"}


def with_result(payment_id):
    """Enqueue process_payment asking for its result (results are opt-in), to wait on."""
    return process_payment.apply_async((str(payment_id),), ignore_result=False)


def retry_delays(worker):
    """The delays of the retries a worker announced ("Retry in 2s: ..."), in order."""
    return [
        int(line.split("Retry in ")[1].split("s:")[0])
        for line in worker.matching(r"process_payment\[.*\] retry: Retry in \d+s")
    ]


def charges(payment):
    return gateway.charge_count(idempotency_key=str(payment.id))


def reloaded(payment):
    payment.refresh_from_db()
    return payment


def test_fifty_concurrent_deliveries_across_two_workers_charge_once(
    broker, start_worker, make_payment
):
    # given: a slow gateway, so that deliveries overlap, and two worker processes
    env = {"GATEWAY_LATENCY_MS": "300"}
    workers = [start_worker(concurrency=4, env=env), start_worker(concurrency=4, env=env)]
    payment = make_payment()
    # when
    results = [with_result(payment.id) for _ in range(50)]
    for result in results:
        result.get(timeout=60)
    # then
    assert charges(payment) == 1
    assert reloaded(payment).status == Payment.Status.PROCESSED
    assert payment.attempts == 1
    output = "\n".join(w.output for w in workers)
    assert output.count("Charging payment %s" % payment.id) == 1
    skipped = output.count("Payment %s already processed." % payment.id) + output.count(
        "payment:%s is being worked on" % payment.id
    )
    assert skipped == 49
    assert all(w.matching(r"process_payment\[.*\] received") for w in workers)


def test_a_transient_failure_is_retried_after_its_backoff_and_then_succeeds(
    broker, start_worker, make_payment
):
    worker = start_worker(env=FAST_RETRIES)
    payment = make_payment(source="tok_flaky")
    with_result(payment.id).get(timeout=30)
    worker.wait_for(r"process_payment\[.*\] retry: Retry in 1s: GatewayUnavailable")
    assert retry_delays(worker) == [1]
    assert reloaded(payment).status == Payment.Status.PROCESSED
    assert payment.attempts == 2
    assert charges(payment) == 1


def test_retry_delays_grow_and_exhausted_retries_leave_the_payment_to_an_operator(
    broker, start_worker, make_payment
):
    worker = start_worker(env={**FAST_RETRIES, "GATEWAY_OUTAGE": "1", "TASK_MAX_RETRIES": "3"})
    payment = make_payment()
    process_payment.delay(str(payment.id))
    worker.wait_for(r"Payment %s awaits an operator" % payment.id, timeout=30)
    delays = retry_delays(worker)
    # base 1 s doubling: between half and all of 1, 2 and 4 s, in whole seconds
    assert len(delays) == 3
    assert delays[0] == 1
    assert 1 <= delays[1] <= 2
    assert 2 <= delays[2] <= 4
    assert reloaded(payment).status == Payment.Status.AWAITING_OPERATOR
    assert payment.attempts == 4
    assert charges(payment) == 0


def test_a_decline_fails_the_payment_without_a_retry(broker, start_worker, make_payment):
    worker = start_worker(env=FAST_RETRIES)
    payment = make_payment(source="tok_decline")
    result = process_payment.delay(str(payment.id))
    worker.wait_for(r"process_payment\[%s\] raised unexpected: CardDeclined" % result.id)
    assert reloaded(payment).status == Payment.Status.FAILED
    assert payment.attempts == 1
    assert not worker.matching("Retry in")


def test_a_missing_payment_is_logged_and_not_retried(broker, start_worker):
    worker = start_worker(env=FAST_RETRIES)
    missing = "6f1c2a8e-0000-4000-8000-000000000000"
    result = with_result(missing)
    assert result.get(timeout=20) is None
    worker.wait_for(r"Payment %s does not exist; nothing to process\." % missing)
    assert not worker.matching("Retry in")


def test_a_rolled_back_payment_is_never_processed(broker, start_worker):
    worker = start_worker()
    # when
    try:
        with transaction.atomic():
            services.payment_create(amount="7.00", currency="EUR")
            raise RuntimeError("the request failed after creating the payment")
    except RuntimeError:
        pass
    # then: a task sent afterwards runs, and no payment task ever arrived
    assert add.delay(1, 1).get(timeout=20) == 2
    assert not worker.matching(r"process_payment\[")
    assert broker.server.queue_length("default") == 0
    assert not Payment.objects.exists()


def test_a_worker_killed_mid_charge_loses_nothing_and_charges_once(
    broker, start_worker, make_payment
):
    # given: the gateway accepts the charge, then takes 5 s to answer
    quick_redelivery = {
        "REDIS_VISIBILITY_TIMEOUT_SECONDS": "10",
        "TASK_TIME_LIMIT_SECONDS": "5",
        "TASK_SOFT_TIME_LIMIT_SECONDS": "4",
        "TASK_RETRY_BACKOFF_MAX_SECONDS": "4",
    }
    doomed = start_worker(env={"GATEWAY_LATENCY_MS": "5000"})
    payment = make_payment()
    process_payment.delay(str(payment.id))
    doomed.wait_for(r"Gateway charged .* for %s" % payment.id)
    # when: the worker dies before it hears back
    doomed.kill()
    assert reloaded(payment).status == Payment.Status.PROCESSING
    rescuer = start_worker(env=quick_redelivery)
    # then: the message comes back, and the second run charges nothing new
    rescuer.wait_for(r"Payment %s processed" % payment.id, timeout=60)
    assert reloaded(payment).status == Payment.Status.PROCESSED
    assert payment.attempts == 2
    assert charges(payment) == 1
    rescuer.wait_for(r"Gateway replayed charge .* for %s" % payment.id)


def test_the_api_payment_is_processed_once_and_repeated_celery_calls_charge_nothing(
    broker, start_worker, client, process_env
):
    worker = start_worker()
    response = client.post(
        "/api/payments/", {"amount": "12.50", "currency": "EUR"}, content_type="application/json"
    )
    assert response.status_code == 202
    url = response.json()["url"]
    wait_until(
        lambda: client.get(url).json()["status"] == "processed", timeout=20, what="processing"
    )
    payment_id = response.json()["id"]
    # when: the same task is sent again from the command line
    for _ in range(3):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config.celery",
                "call",
                "apps.payments.tasks.process_payment",
                "--args",
                json.dumps([payment_id]),
            ],
            cwd=BASE_DIR,
            env=process_env,
            check=True,
            capture_output=True,
            timeout=60,
        )
    # then
    worker.wait_for(r"Payment %s already processed\." % payment_id, count=3)
    body = client.get(url).json()
    assert (body["status"], body["attempts"], body["charges"]) == ("processed", 1, 1)


def test_a_payment_stuck_pending_is_enqueued_again_unless_it_waits_for_an_operator(
    broker, start_worker, make_payment
):
    # given: three payments pending for an hour; one's task is in the dead-letter queue,
    # another's waits in the outbox for the broker
    worker = start_worker(env={"TASK_MAX_RETRIES": "0"})
    stuck, dead, waiting = make_payment(), make_payment(), make_payment()
    Payment.objects.update(created_at=timezone.now() - timedelta(hours=1))
    dead_letter_a_payment_task(dead)
    OutboxMessage.objects.create(task_name=process_payment.name, args=[str(waiting.id)])
    # when
    assert requeue_pending_payments() == 1
    # then: the lost one is processed; the others are left alone
    worker.wait_for(r"Payment %s processed" % stuck.id)
    dead.refresh_from_db()
    assert dead.status == Payment.Status.PENDING
    assert broker.server.queue_length("dead_letter") == 1
    assert OutboxMessage.objects.filter(args=[str(waiting.id)]).count() == 1


def dead_letter_a_payment_task(payment):
    """Put a process_payment message for ``payment`` straight into the dead-letter queue."""
    process_payment.apply_async(
        (str(payment.id),), exchange="dead_letter", routing_key="dead_letter"
    )


def test_a_payment_whose_task_kills_its_worker_every_time_ends_awaiting_an_operator(
    broker, start_worker, make_payment
):
    # given: a payment whose charge kills the worker's process, among good ones
    worker = start_worker(env={"DELIVERY_LIMIT": "2"}, concurrency=1)
    poison = make_payment(source="tok_crash")
    process_payment.delay(str(poison.id))
    good = [make_payment() for _ in range(3)]
    results = [with_result(payment.id) for payment in good]
    # when: it has killed the worker's process as often as the limit allows
    worker.wait_for(r"is not run again: delivered 2 times without finishing", timeout=90)
    worker.wait_for(r"Payment %s awaits an operator: DeliveryLimitExceeded" % poison.id)
    # then: its message is dead-lettered, it waits for an operator, and the rest flows
    for result in results:
        result.get(timeout=60)
    assert len(worker.matching(r"Gateway driver crashed charging %s" % poison.id)) == 2
    assert all(reloaded(payment).status == Payment.Status.PROCESSED for payment in good)
    assert reloaded(poison).status == Payment.Status.AWAITING_OPERATOR
    assert poison.last_error.startswith("DeliveryLimitExceeded: delivered 2 times")
    assert charges(poison) == 0
    wait_until(
        lambda: broker.server.queue_length("dead_letter") == 1,
        timeout=30,
        what="the poison payment's message in the dead-letter queue",
    )
    failure = TaskFailure.objects.get(args=[str(poison.id)])
    assert failure.reason == TaskFailure.Reason.DELIVERY_LIMIT
