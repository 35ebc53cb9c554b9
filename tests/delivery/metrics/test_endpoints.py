"""Metrics of real processes on a real broker: the worker's port counts what its pool
ran, the web's /metrics reads the queues, beat's port counts what it sent; every
endpoint's text passes promtool."""

import json
import urllib.request

from apps.payments.models import Payment
from apps.payments.services import PROCESS_PAYMENT
from apps.payments.tasks import process_payment
from apps.users.tasks import add
from tests.delivery.metrics.scraping import promtool_check, samples, scrape, scraped_when, value
from tests.servers import free_port
from tests.tasks import kill_own_process

ADD = "apps.users.tasks.add"


def test_the_worker_counts_a_success_a_retry_and_a_dead_letter_and_the_web_sees_the_queues(
    broker, start_worker, start_web, make_payment
):
    # given: a worker serving its metrics, whose retries wait one second, and the web
    port = free_port()
    start_worker(
        env={"WORKER_METRICS_PORT": str(port), "TASK_RETRY_BACKOFF_SECONDS": "0.5"},
    )
    web = start_web()
    worker_url = "http://127.0.0.1:%d/metrics" % port
    flaky = make_payment(source="tok_flaky")

    # when: a task that succeeds, one that fails transiently once, one that fails for good
    add.delay(2, 3)
    process_payment.delay(str(flaky.pk))
    add.delay("x", 1)

    # then: the worker counted each run
    def settled(text):
        return (
            value(text, "conveyor_tasks_total", task=PROCESS_PAYMENT, outcome="succeeded") == 1
            and value(text, "conveyor_tasks_total", task=ADD, outcome="dead_lettered") == 1
            and value(text, "conveyor_task_duration_seconds_count", task=ADD) == 2
            and value(text, "conveyor_task_duration_seconds_count", task=PROCESS_PAYMENT) == 2
        )

    text = scraped_when(worker_url, settled)
    expected = {
        ("conveyor_tasks_total", ADD, "started"): 2,
        ("conveyor_tasks_total", ADD, "succeeded"): 1,
        ("conveyor_tasks_total", ADD, "failed"): 1,
        ("conveyor_tasks_total", ADD, "dead_lettered"): 1,
        ("conveyor_tasks_total", ADD, "retried"): None,
        ("conveyor_tasks_total", PROCESS_PAYMENT, "started"): 2,
        ("conveyor_tasks_total", PROCESS_PAYMENT, "retried"): 1,
        ("conveyor_tasks_total", PROCESS_PAYMENT, "succeeded"): 1,
        ("conveyor_tasks_total", PROCESS_PAYMENT, "failed"): None,
    }
    found = {
        (name, task, outcome): value(text, name, task=task, outcome=outcome)
        for name, task, outcome in expected
    }
    assert found == expected
    errors = {"task": PROCESS_PAYMENT, "error": "GatewayUnavailable"}
    assert value(text, "conveyor_task_retries_total", **errors) == 1
    assert value(text, "conveyor_dead_letters_total", reason="failed") == 1
    assert value(text, "conveyor_task_latency_seconds_count", task=ADD) == 2
    assert value(text, "conveyor_task_latency_seconds_count", task=PROCESS_PAYMENT) == 2
    assert value(text, "conveyor_tasks_running", task=ADD) == 0
    # the retry is a new message, published by the pool process that ran the task
    assert value(text, "conveyor_tasks_published_total", task=PROCESS_PAYMENT) == 1
    assert Payment.objects.get(pk=flaky.pk).status == Payment.Status.PROCESSED
    promtool_check(text)

    # and the web reads the one dead letter at the broker, the outbox and the heartbeat
    web_text = scraped_when(
        web.url + "/metrics",
        lambda text: value(text, "conveyor_queue_messages", queue="dead_letter") == 1,
    )
    assert value(web_text, "conveyor_queue_messages", queue="default") == 0
    assert value(web_text, "conveyor_scrape_source_up", source="broker") == 1
    assert value(web_text, "conveyor_outbox_pending_messages") == 0
    heartbeats = [
        age
        for (name, labels), age in samples(web_text).items()
        if name == "conveyor_heartbeat_age_seconds" and ("process", "worker") in labels
    ]
    assert len(heartbeats) == 1
    assert heartbeats[0] < 30
    promtool_check(web_text)


def test_a_pool_process_that_died_running_a_task_no_longer_counts_it_as_running(
    broker, start_worker
):
    # given: a worker that dead-letters a message at its second delivery, serving its
    # metrics to those with the token
    port = free_port()
    start_worker(
        env={"WORKER_METRICS_PORT": str(port), "DELIVERY_LIMIT": "1", "METRICS_TOKEN": "s3cret"}
    )
    url = "http://127.0.0.1:%d/metrics" % port
    # when: a task kills the pool process that runs it
    kill_own_process.delay()
    # then: its run started, its message went to the dead letters for its delivery limit,
    # and once the pool has replaced the process, the task no longer counts as running
    name = kill_own_process.name
    text = scraped_when(
        url,
        lambda text: (
            value(text, "conveyor_dead_letters_total", reason="delivery_limit") == 1
            and not value(text, "conveyor_tasks_running", task=name)
        ),
        token="s3cret",
    )
    assert value(text, "conveyor_tasks_total", task=name, outcome="started") == 1
    assert value(text, "conveyor_tasks_total", task=name, outcome="dead_lettered") == 1
    assert value(text, "conveyor_tasks_total", task=name, outcome="succeeded") is None
    promtool_check(text)
    # and without the token, nothing
    assert scrape(url)[0] == 401
    assert scrape(url, token="wrong")[0] == 401


def test_beat_serves_the_count_of_what_it_sent(broker, start_beat):
    # given: beat sending every periodic task every second, serving its metrics
    port = free_port()
    start_beat(env={"BEAT_METRICS_PORT": str(port), "BEAT_SCHEDULE_OVERRIDE_SECONDS": "1"})
    # then
    cleanup = {"task": "apps.common.tasks.perform_cleanup"}
    text = scraped_when(
        "http://127.0.0.1:%d/metrics" % port,
        lambda text: (value(text, "conveyor_tasks_published_total", **cleanup) or 0) >= 1,
    )
    promtool_check(text)


def test_gunicorns_workers_add_up_in_the_webs_metrics(broker, start_gunicorn):
    # given: gunicorn with two workers, under production settings with a token
    web = start_gunicorn(env={"WEB_CONCURRENCY": "2", "METRICS_TOKEN": "s3cret"})
    # when: six payments are posted (each request served by either worker)
    for n in range(6):
        request = urllib.request.Request(
            web.url + "/api/payments/",
            data=json.dumps({"amount": "1.%02d" % n, "currency": "EUR"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
    # then: /metrics adds up both workers' publications, and reads the six at the broker
    text = scraped_when(
        web.url + "/metrics",
        lambda text: value(text, "conveyor_tasks_published_total", task=PROCESS_PAYMENT) == 6,
        token="s3cret",
    )
    assert value(text, "conveyor_queue_messages", queue="default") == 6
    assert value(text, "conveyor_outbox_pending_messages") == 0
    promtool_check(text)
    assert scrape(web.url + "/metrics")[0] == 401
