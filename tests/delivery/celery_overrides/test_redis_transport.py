"""Conveyor's Redis transport never pops a message it has not recorded: a consumer
killed the instant it has taken a message leaves it unacknowledged, not lost, and whole
workers killed at any moment lose no payment."""

import random
import subprocess
import sys
import textwrap
import time
import uuid
from decimal import Decimal

import pytest
from kombu import Connection, Exchange, Producer, Queue

from apps.delivery.celery_overrides import REDIS_TRANSPORT
from apps.payments import gateway, services
from apps.payments.models import Payment
from tests.conftest import broker_for
from tests.processes import BASE_DIR
from tests.servers import wait_until

#: A consumer that dies (SIGKILL) the moment kombu hands it a message taken from Redis,
#: before anything else happens to it.
DIES_ON_RECEIPT = textwrap.dedent(
    """
    import os, signal, sys
    from kombu import Connection, Queue
    from kombu.transport.virtual import base

    def die(self, message, queue):
        os.kill(os.getpid(), signal.SIGKILL)

    base.Transport._deliver = die
    url, transport, queue = sys.argv[1:]
    with Connection(url, transport=transport) as connection:
        with connection.Consumer(Queue(queue), callbacks=[print], accept=["json"]):
            print("consuming", flush=True)
            connection.drain_events(timeout=30)
    """
)


def consume_and_die(url: str, transport: str, queue: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", DIES_ON_RECEIPT, url, transport, queue],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def redis(redis_server):
    redis_server.reset()
    return redis_server


def test_a_consumer_killed_as_it_takes_a_message_leaves_it_unacknowledged(redis):
    # given: one message waiting
    queue = "atomic-%s" % uuid.uuid4().hex[:8]
    with Connection(redis.broker_url, transport=REDIS_TRANSPORT) as connection:
        bound = Queue(queue, Exchange(queue, type="direct"), routing_key=queue)
        Producer(connection).publish(
            {"n": 1}, exchange=bound.exchange, routing_key=queue, declare=[bound]
        )
    client = redis.client()
    assert client.llen(queue) == 1
    # when: its consumer dies as it receives it
    run = consume_and_die(redis.broker_url, REDIS_TRANSPORT, queue)
    assert run.returncode == -9, run.stderr
    # then: it left the queue only to be recorded as unacknowledged, for redelivery
    assert client.llen(queue) == 0
    assert client.hlen("unacked") == 1
    assert client.zcard("unacked_index") == 1
    (payload,) = client.hvals("unacked")
    assert '"n": 1' in payload or "eyJuIjogMX0=" in payload


@pytest.fixture
def broker(redis_server):
    """Redis, whose fetch this module is about."""
    redis_server.reset()
    with broker_for(redis_server) as broker:
        yield broker


#: Killed workers' messages come back after the visibility timeout: a short one.
QUICK_REDELIVERY = {
    "REDIS_VISIBILITY_TIMEOUT_SECONDS": "8",
    "TASK_TIME_LIMIT_SECONDS": "4",
    "TASK_SOFT_TIME_LIMIT_SECONDS": "3",
    "TASK_RETRY_BACKOFF_SECONDS": "1",
    "TASK_RETRY_BACKOFF_MAX_SECONDS": "1",
}


def test_whole_workers_killed_while_they_wait_and_while_they_drain_lose_no_payment(
    broker, start_worker
):
    # given: a seeded run of kills, half while a worker waits on a trickle of payments,
    # half while it drains a backlog
    rng = random.Random(1407)
    payments = []

    def enqueue(count):
        for _ in range(count):
            payment, _ = services.payment_create(amount=Decimal("3.00"), currency="EUR")
            payments.append(payment)

    for kill in range(20):
        waiting = kill % 2 == 0
        if not waiting:
            enqueue(8)
        worker = start_worker(env=QUICK_REDELIVERY, concurrency=2)
        if waiting:
            for _ in range(3):
                time.sleep(rng.uniform(0, 0.15))
                enqueue(1)
        time.sleep(rng.uniform(0, 0.3))
        # when: the whole worker (main process and pool) is killed
        worker.kill()
    # then: a last worker processes every payment, each charged once
    worker = start_worker(env=QUICK_REDELIVERY, concurrency=4)
    wait_until(
        lambda: not Payment.objects.exclude(status=Payment.Status.PROCESSED).exists(),
        timeout=90,
        interval=0.5,
        what="every payment processed",
    )
    assert len(payments) == 10 * 3 + 10 * 8
    assert [gateway.charge_count(idempotency_key=str(p.id)) for p in payments] == [1] * 110
    client = broker.server.client()
    wait_until(lambda: client.hlen("unacked") == 0, timeout=30, what="every message acknowledged")
    assert client.llen("default") == 0
