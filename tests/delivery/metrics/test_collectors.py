"""The web's /metrics, through Django: the outbox's backlog and the heartbeats read at
each scrape, a broker that is down or never answers reported as such, quickly, with a
200, and the token that guards it all."""

import socket
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.delivery.models import OutboxMessage
from apps.delivery.processes.health import heartbeat_path, touch
from tests.conftest import pointed_at
from tests.delivery.metrics.scraping import promtool_check, value
from tests.servers import free_port


@pytest.fixture
def silent_broker():
    """A port that accepts connections and never answers, as a hung broker does."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture
def no_broker():
    """This process's Celery app on a Redis port where nothing listens."""
    url = "redis://127.0.0.1:%d/0" % free_port()
    with pointed_at(url, url.replace("/0", "/1")):
        yield


def get_metrics(client, **headers):
    started = time.monotonic()
    response = client.get("/metrics", headers=headers)
    return response, time.monotonic() - started


@pytest.mark.django_db
@pytest.mark.usefixtures("no_broker")
def test_the_outbox_backlog_and_the_heartbeats_are_read_at_each_scrape(client, settings, tmp_path):
    # given: two messages waiting in the outbox (the older one 2 minutes), one sent, and
    # the heartbeats of a worker and of beat
    settings.RUN_DIR = tmp_path
    OutboxMessage.objects.create(task_name="t", sent_at=timezone.now())
    OutboxMessage.objects.create(task_name="t")
    oldest = OutboxMessage.objects.create(task_name="t")
    OutboxMessage.objects.filter(pk=oldest.pk).update(
        created_at=timezone.now() - timedelta(minutes=2)
    )
    touch(heartbeat_path("worker", "w1@host", run_dir=tmp_path))
    touch(heartbeat_path("beat", run_dir=tmp_path))
    # when
    response, _ = get_metrics(client)
    # then
    text = response.content.decode()
    assert response.status_code == 200
    assert value(text, "conveyor_outbox_pending_messages") == 2
    assert 120 <= value(text, "conveyor_outbox_oldest_pending_age_seconds") < 130
    assert value(text, "conveyor_heartbeat_age_seconds", process="worker", node="w1@host") < 5
    assert value(text, "conveyor_heartbeat_age_seconds", process="beat", node="") < 5
    assert value(text, "conveyor_scrape_source_up", source="database") == 1
    assert value(text, "conveyor_scrape_source_up", source="heartbeats") == 1
    promtool_check(text)


@pytest.mark.django_db
@pytest.mark.usefixtures("no_broker")
def test_a_broker_that_is_down_is_a_metric_not_an_error(client):
    response, took = get_metrics(client)
    text = response.content.decode()
    assert response.status_code == 200
    assert took < 2
    assert value(text, "conveyor_scrape_source_up", source="broker") == 0
    assert value(text, "conveyor_queue_messages", queue="dead_letter") is None
    promtool_check(text)


@pytest.mark.django_db
@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_a_broker_that_never_answers_costs_a_scrape_two_seconds_at_most(
    client, silent_broker, scheme
):
    url = {
        "redis": "redis://127.0.0.1:%d/0" % silent_broker,
        "amqp": "amqp://guest:guest@127.0.0.1:%d//" % silent_broker,
    }[scheme]
    with pointed_at(url, "rpc://" if scheme == "amqp" else url.replace("/0", "/1")):
        response, took = get_metrics(client)
    assert response.status_code == 200
    assert took < 2.5
    assert value(response.content.decode(), "conveyor_scrape_source_up", source="broker") == 0


def test_with_a_token_set_a_scrape_without_it_is_refused(client, settings):
    settings.METRICS_TOKEN = "s3cret"
    assert get_metrics(client)[0].status_code == 401
    refused, _ = get_metrics(client, Authorization="Bearer wrong")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_production_settings_serve_no_metrics_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_TOKEN_REQUIRED = True
    response, _ = get_metrics(client, Authorization="Bearer anything")
    assert response.status_code == 403
    assert b"METRICS_TOKEN" in response.content


@pytest.mark.django_db
@pytest.mark.usefixtures("no_broker")
def test_with_the_token_any_host_may_scrape(client, settings):
    settings.METRICS_TOKEN = "s3cret"
    response, _ = get_metrics(client, Authorization="Bearer s3cret", Host="10.1.2.3:8000")
    assert response.status_code == 200
