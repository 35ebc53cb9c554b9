"""Results over ``rpc://`` (RabbitMQ's default result backend) arrive however long the
task takes: waiting for one never reconnects the result consumer (Celery 5.6 did, each
second it waited, and could drop the result meanwhile)."""

import logging

import pytest

from tests.conftest import broker_for
from tests.tasks import sleep_then_return


@pytest.fixture
def broker(rabbitmq_server):
    """RabbitMQ, where results come back over the broker itself."""
    rabbitmq_server.reset()
    with broker_for(rabbitmq_server) as broker:
        yield broker


def test_a_result_that_takes_seconds_arrives_without_reconnecting_the_result_consumer(
    broker, start_worker, caplog
):
    # given
    start_worker(concurrency=3)
    caplog.set_level(logging.WARNING, logger="celery.backends.rpc")
    # when: each result takes longer than the consumer's one-second poll
    results = [sleep_then_return.delay(2.5, n) for n in range(3)]
    # then
    assert [result.get(timeout=30) for result in results] == [0, 1, 2]
    assert broker.result_backend == "rpc://"
    assert "connection lost" not in caplog.text
