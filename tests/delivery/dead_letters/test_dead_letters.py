"""The dead-letter queue on real brokers, with real workers and the operator tools."""

import json
import pickle
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from kombu import Producer

from apps.delivery.dead_letters import dead_letters
from apps.delivery.models import TaskFailure
from apps.payments import gateway
from apps.payments.models import Payment
from apps.payments.tasks import process_payment
from apps.users.tasks import add
from config import celery_app
from tests.processes import BASE_DIR
from tests.servers import wait_until
from tests.tasks import kill_own_process

FAST_RETRIES = {"TASK_RETRY_BACKOFF_SECONDS": "1", "TASK_RETRY_BACKOFF_MAX_SECONDS": "2"}


def deadletters(*args):
    out = StringIO()
    call_command("deadletters", *args, stdout=out)
    return out.getvalue()


def dead_lettered(broker, count):
    """Wait until the broker's dead-letter queue holds ``count`` messages."""
    wait_until(
        lambda: broker.server.queue_length("dead_letter") == count,
        timeout=30,
        what="%d messages in the dead-letter queue" % count,
    )


def box():
    return dead_letters(celery_app.connection_for_write())


def charges(payment):
    return gateway.charge_count(idempotency_key=str(payment.id))


def test_payments_failing_during_an_outage_are_dead_lettered_and_replayed_once_healed(
    broker, start_worker, make_payment
):
    # given: the gateway is down
    down = start_worker(env={**FAST_RETRIES, "GATEWAY_OUTAGE": "1", "TASK_MAX_RETRIES": "2"})
    payments = [make_payment() for _ in range(3)]
    results = [process_payment.delay(str(p.id)) for p in payments]
    # when: their retries run out
    down.wait_for(r"failed for good after 2 retries", count=3, timeout=60)
    # then: the broker holds them in its dead-letter queue, as its own tools show
    dead_lettered(broker, 3)
    down.stop()
    if broker.kind == "rabbitmq":
        wait_until(
            lambda: broker.server.queues().get("dead_letter") == 3,
            timeout=30,
            what="rabbitmqctl list_queues to show 3 dead letters",
        )
    listing = deadletters("list")
    for result in results:
        assert result.id in listing
    assert listing.count("apps.payments.tasks.process_payment") == 3
    assert "GatewayUnavailable: gateway unavailable: 503" in listing
    assert all(p.status == Payment.Status.AWAITING_OPERATOR for p in Payment.objects.all())
    shown = json.loads(deadletters("show", results[0].id))
    assert shown["retries"] == 2
    assert shown["exception_type"] == "GatewayUnavailable"
    assert "Traceback" in shown["traceback"]
    assert shown["first_failed_at"] < shown["last_failed_at"]
    assert shown["queue"] == "default"
    assert shown["args"] == [str(payments[0].id)]

    # when: the gateway is healed and an operator replays them
    healed = start_worker()
    assert "3 dead letters replayed." in deadletters("replay", "--all")
    # then: each is processed once
    healed.wait_for(r"process_payment\[.*\] succeeded", count=3, timeout=30)
    assert broker.server.queue_length("dead_letter") == 0
    for payment in payments:
        payment.refresh_from_db()
        assert payment.status == Payment.Status.PROCESSED
        assert charges(payment) == 1
    assert not TaskFailure.objects.exists()  # facts go once the task succeeds


def test_a_permanent_decline_is_dead_lettered_without_a_retry(broker, start_worker, make_payment):
    worker = start_worker(env=FAST_RETRIES)
    payment = make_payment(source="tok_decline")
    result = process_payment.delay(str(payment.id))
    worker.wait_for(r"failed for good after 0 retries \(CardDeclined")
    dead_lettered(broker, 1)
    assert not worker.matching("Retry in")
    letter = box().get(result.id)
    assert letter.error == "CardDeclined: card declined (tok_decline)"
    (listed,) = json.loads(deadletters("list", "--format", "json"))
    assert listed["id"] == result.id
    assert listed["args"] == [str(payment.id)]
    assert (listed["reason"], listed["error"]) == ("failed", letter.error)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    # a replay charges nothing: the payment failed for good
    worker.stop()
    replayer = start_worker()
    deadletters("replay", result.id)
    replayer.wait_for(r"Payment %s failed earlier" % payment.id)
    assert charges(payment) == 0


def test_messages_no_task_can_take_are_dead_lettered_not_dropped(broker, start_worker):
    worker = start_worker()
    # an unknown task name
    unknown = celery_app.send_task("apps.nowhere.tasks.vanished", args=[1])
    # a body the worker refuses to decode (pickle)
    with celery_app.connection_for_write() as connection:
        Producer(connection).publish(
            pickle.dumps(((1, 2), {}, {})),
            exchange="tasks",
            routing_key="default",
            serializer=None,
            content_type="application/x-python-serialize",
            content_encoding="binary",
            headers={"id": "pickled-task", "task": "apps.users.tasks.add"},
        )
    # a body that is not JSON at all, without any task header
    with celery_app.connection_for_write() as connection:
        Producer(connection).publish(
            b"\xff\xfe not json",
            exchange="tasks",
            routing_key="default",
            content_type="application/json",
            content_encoding="utf-8",
        )
    worker.wait_for(r"Received unregistered task of type 'apps.nowhere.tasks.vanished'")
    # then: a later task still runs, and all three wait in the dead-letter queue
    assert add.delay(2, 2).get(timeout=20) == 4
    dead_lettered(broker, 3)
    letters = {letter.id: letter for letter in box().list()}
    assert letters[unknown.id].error.startswith("UnknownTask: no task named")
    assert letters["pickled-task"].error.startswith("ContentDisallowed")
    assert len(letters) == 3


def test_a_message_that_keeps_killing_its_worker_ends_in_the_dead_letter_queue(
    broker, start_worker
):
    worker = start_worker(env={"DELIVERY_LIMIT": "2"}, concurrency=1)
    result = kill_own_process.delay()
    worker.wait_for(r"Process '\S+' pid:\d+ exited", count=2, timeout=60)
    # the second loss is the last: its third delivery is dead-lettered, not run again
    assert add.delay(1, 2).get(timeout=30) == 3
    dead_lettered(broker, 1)
    letter = box().get(result.id)
    assert letter.task_name == "tests.tasks.kill_own_process"
    assert letter.reason == "delivery_limit"
    assert letter.error.startswith("DeliveryLimitExceeded: delivered 2 times")
    assert len(worker.matching(r"Process '\S+' pid:\d+ exited")) == 2


def test_purge_empties_the_queue_after_confirmation(broker, start_worker, monkeypatch):
    start_worker()
    for _ in range(2):
        add.delay("x", 1)
    dead_lettered(broker, 2)
    monkeypatch.setattr("sys.stdin", StringIO("n\n"))
    with pytest.raises(CommandError, match="Nothing purged"):
        deadletters("purge", "--all")
    assert broker.server.queue_length("dead_letter") == 2
    assert deadletters("purge", "--all", "--no-input").splitlines() == ["2 dead letters purged."]
    assert broker.server.queue_length("dead_letter") == 0
    assert not TaskFailure.objects.exists()
    with pytest.raises(CommandError, match="No dead letter nope"):
        deadletters("purge", "nope", "--yes", "--format", "json")


def test_concurrent_replays_republish_each_dead_letter_once(broker, start_worker, process_env):
    # given: ten dead letters and no worker running
    worker = start_worker()
    for n in range(10):
        add.delay("x", n)
    dead_lettered(broker, 10)
    worker.stop()
    # when: two operators replay everything at the same time
    command = [*(sys.executable, "manage.py", "deadletters", "replay", "--all", "--format", "json")]
    runs = [
        subprocess.Popen(command, cwd=BASE_DIR, env=process_env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=60)[0] for run in runs]
    # then: every dead letter was replayed once, by one of them
    replayed = [letter for out in outputs for letter in json.loads(out)["replayed"]]
    assert len(replayed) == 10
    assert len(set(replayed)) == 10
    assert broker.server.queue_length("dead_letter") == 0
    assert broker.server.queue_length("default") == 10


def test_a_failed_republish_leaves_the_dead_letter_in_place(broker, start_worker, monkeypatch):
    worker = start_worker()
    result = add.delay("x", 1)
    dead_lettered(broker, 1)
    worker.stop()
    failing = box()

    def broken(*args, **kwargs):
        raise ConnectionError("broker went away")

    monkeypatch.setattr(type(failing), "_publish", broken, raising=False)
    monkeypatch.setattr(failing, "move", broken, raising=False)
    with pytest.raises(ConnectionError):
        failing.replay(ids=[result.id])
    assert broker.server.queue_length("dead_letter") == 1
    assert broker.server.queue_length("default") == 0


def test_staff_see_dead_letters_on_a_page_and_can_replay_and_purge_them(
    broker, start_worker, client, admin_client
):
    worker = start_worker()
    kept, dropped = add.delay("x", 1), add.delay("y", 2)
    dead_lettered(broker, 2)
    worker.stop()
    # anonymous users are sent to the login page
    assert client.get("/admin/dead-letters/").status_code == 302
    # staff see both
    page = admin_client.get("/admin/dead-letters/").content.decode()
    assert kept.id in page
    assert dropped.id in page
    # and act on one at a time
    admin_client.post(
        "/admin/dead-letters/", {"action": "purge", "id": dropped.id, "confirmed": "1"}
    )
    # (add("x", 1) failed permanently: replaying it takes the explicit extra yes)
    admin_client.post(
        "/admin/dead-letters/",
        {"action": "replay", "id": kept.id, "confirmed": "1", "include_permanent": "1"},
    )
    assert broker.server.queue_length("dead_letter") == 0
    assert broker.server.queue_length("default") == 1
    assert not TaskFailure.objects.filter(task_id=dropped.id).exists()
    assert TaskFailure.objects.get(task_id=kept.id).replays == 1
