"""A RabbitMQ failover list (``amqp://a;amqp://b``): a worker, a client, the health check
and a metrics scrape each use the next node when the first does not answer."""

import json
import urllib.request

import pytest

from apps.users.tasks import add
from tests.conftest import pointed_at
from tests.delivery.metrics.scraping import scrape, value
from tests.servers import free_port


@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)
def test_every_process_uses_the_next_node_of_a_failover_list(broker, start_worker, start_web):
    # given: a list whose first node does not answer
    down = "amqp://guest:guest@127.0.0.1:%d//" % free_port()
    url = "%s;%s" % (down, broker.url)
    env = {"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": "rpc://"}
    start_worker(env=env)
    web = start_web(env=env)
    # when / then: a task runs, sent and received through the second node
    with pointed_at(url, "rpc://"):
        assert add.delay(2, 3).get(timeout=30) == 5
    # the health check and a scrape read the broker through it too, at once
    with urllib.request.urlopen(web.url + "/healthz", timeout=10) as response:
        assert json.load(response)["checks"]["broker"]["ok"] is True
    status, text = scrape(web.url + "/metrics")
    assert status == 200
    assert value(text, "conveyor_scrape_source_up", source="broker") == 1
    assert value(text, "conveyor_queue_messages", queue="default") == 0
