"""Structured logs: JSON lines from real web, worker and beat processes, with correlation."""

import io
import json
import logging
import os
import signal
import subprocess
import sys
import urllib.request
import uuid

import pytest

from apps.delivery.logs import setup
from apps.delivery.logs.context import ContextFilter, correlation, mask_passwords
from apps.delivery.logs.formats import ConsoleFormatter, JsonFormatter
from apps.users.tasks import add
from tests.processes import BASE_DIR
from tests.tasks import enqueue_add

JSON = {"LOG_FORMAT": "json"}


def records(process):
    """Every line the process wrote, parsed: a line that is not JSON fails the test."""
    parsed = []
    for line in process.lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail("%s wrote a line that is not JSON: %r" % (process.name, line))
    return parsed


def post_payment(web, request_id):
    request = urllib.request.Request(
        web.url + "/api/payments/",
        data=json.dumps({"amount": "12.50", "currency": "EUR"}).encode(),
        headers={"X-Request-ID": request_id, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response), response.headers["X-Request-ID"]


def test_a_web_request_and_the_task_it_enqueues_log_json_with_one_correlation_id(
    broker, start_worker, start_web
):
    # given
    worker = start_worker(env=JSON)
    web = start_web(env=JSON)
    request_id = "demo-%s" % uuid.uuid4().hex[:8]
    # when
    payment, echoed = post_payment(web, request_id)
    worker.wait_for(r"Payment %s processed" % payment["id"])
    worker.wait_for(r"process_payment\[.*\] succeeded")
    # then: the request line and the task's lines carry the request's id
    assert echoed == request_id
    request_lines = [r for r in records(web) if r.get("correlation_id") == request_id]
    assert any(r["message"] == "POST /api/payments/ 202" for r in request_lines)
    assert all(r["process"] == "web" for r in request_lines)
    task_lines = [r for r in records(worker) if r.get("correlation_id") == request_id]
    assert {r["logger"] for r in task_lines} >= {"apps.payments.services", "celery.app.trace"}
    for record in task_lines:
        assert record["task_name"] == "apps.payments.tasks.process_payment"
        assert record["task_id"]
        assert record["process"] == "worker"
    succeeded = [r for r in task_lines if "succeeded in" in r["message"]]
    assert len(succeeded) == 1


def test_task_lines_carry_task_fields_and_tracebacks_stay_in_one_object(broker, start_worker):
    worker = start_worker(env=JSON)
    result = add.delay(5, 10)
    assert result.get(timeout=20) == 15
    failing = add.delay("five", 10)
    worker.wait_for(r"add\[%s\] raised unexpected" % failing.id)
    lines = records(worker)
    # the seed's line
    (adding,) = [r for r in lines if r["message"] == "Adding 5 + 10"]
    assert adding["task_id"] == result.id
    assert adding["task_name"] == "apps.users.tasks.add"
    assert adding["retries"] == 0
    assert adding["worker"].startswith("w1-")
    assert adding["level"] == "INFO"
    assert adding["logger"] == "apps.users.tasks"
    assert adding["timestamp"].endswith("+00:00")
    # Celery's own lines, as JSON, with the task's fields
    (received,) = [r for r in lines if r["message"].endswith("%s] received" % result.id)]
    assert received["task_id"] == result.id
    assert received["correlation_id"] == adding["correlation_id"]
    (succeeded,) = [r for r in lines if "%s] succeeded in" % result.id in r["message"]]
    assert succeeded["task_name"] == "apps.users.tasks.add"
    assert any(r["message"].endswith(" ready.") for r in lines)
    # the failure's traceback is inside its record
    (raised,) = [r for r in lines if "%s] raised unexpected" % failing.id in r["message"]]
    assert raised["exc_info"].startswith("Traceback (most recent call last):")
    assert "TypeError: add() takes numbers; x is 'five'" in raised["exc_info"]


def test_a_task_enqueued_by_a_task_inherits_its_correlation_id(broker, start_worker):
    worker = start_worker(env=JSON)
    child_id = enqueue_add.delay(2, 3).get(timeout=20)
    worker.wait_for(r"add\[%s\] succeeded" % child_id)
    lines = records(worker)
    (parent,) = [
        r for r in lines if "enqueue_add[" in r["message"] and "succeeded in" in r["message"]
    ]
    (child,) = [r for r in lines if r["message"] == "Adding 2 + 3"]
    assert child["task_id"] == child_id
    assert child["correlation_id"] == parent["correlation_id"]


def test_beat_logs_json_and_each_task_it_sends_gets_a_fresh_correlation_id(
    broker, start_worker, start_beat
):
    env = {**JSON, "CLEANUP_SCHEDULE": "1"}
    worker = start_worker(env=env)
    beat = start_beat(env=env)
    worker.wait_for(r"Cleanup finished", count=2, timeout=30)
    beat_lines = records(beat)
    assert all(r["process"] == "beat" for r in beat_lines)
    assert any("Sending due task cleanup-every-midnight" in r["message"] for r in beat_lines)
    cleanups = [r for r in records(worker) if r["message"].startswith("Cleanup finished")]
    correlation_ids = [r["correlation_id"] for r in cleanups]
    assert len(set(correlation_ids)) == len(correlation_ids) >= 2


def test_every_line_of_a_stopping_worker_is_json_its_shutdown_notice_included(broker, start_worker):
    # given: a worker as compose runs it (behind the supervisor), in JSON mode
    worker = start_worker(supervised=True, env=JSON)
    assert add.delay(1, 2).get(timeout=30) == 3
    # when
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    # then
    messages = [record["message"] for record in records(worker)]
    assert "worker: Warm shutdown (MainProcess)" in messages


def test_a_password_in_the_broker_url_never_reaches_the_logs(broker, start_worker):
    password = "s3cret-%s" % uuid.uuid4().hex[:6]
    url = broker.server.url_with_password("conveyor", password)
    worker = start_worker(env={**JSON, "CELERY_BROKER_URL": url})
    assert add.delay(1, 1).get(timeout=20) == 2
    worker.wait_for(r"Conveyor worker started: broker .*conveyor:\*\*\*@")
    assert records(worker)  # all JSON while it runs
    worker.stop()
    assert password not in worker.output


# -- formats, without processes ---------------------------------------------------------


def emit(formatter, message, *args, **kwargs):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("tests.format.%s" % uuid.uuid4().hex)
    logger.propagate = False
    logger.addHandler(handler)
    logger.warning(message, *args, **kwargs)
    return stream.getvalue()


def test_json_lines_have_the_fields_in_order_and_the_correlation_id():
    with correlation("abc-123"):
        line = emit(JsonFormatter(), "Hello %s", "there", extra={"order": 7})
    assert line.count("\n") == 1
    record = json.loads(line)
    assert list(record)[:5] == ["timestamp", "level", "logger", "message", "process"]
    assert record["message"] == "Hello there"
    assert record["correlation_id"] == "abc-123"
    assert record["order"] == 7


def test_the_console_format_is_one_readable_line_with_the_same_context():
    with correlation("abc-123"):
        line = emit(ConsoleFormatter(), "Hello")
    assert line.count("\n") == 1
    assert " WARNING " in line
    assert line.rstrip().endswith("Hello  [correlation_id=abc-123]")


def test_passwords_in_urls_are_masked_in_any_message():
    assert mask_passwords("to amqp://user:pw@mq:5672// and redis://:x@r/0") == (
        "to amqp://user:***@mq:5672// and redis://:***@r/0"
    )
    line = emit(JsonFormatter(), "Connecting to %s", "postgres://app:hunter2@db/app")
    assert "hunter2" not in line
    assert "postgres://app:***@db/app" in line


def test_the_request_id_is_echoed_or_replaced_when_unsafe(client, db):
    assert client.get("/api/payments/x/", headers={"X-Request-ID": "abc-1"})["X-Request-ID"] == (
        "abc-1"
    )
    replaced = client.get("/api/payments/x/", headers={"X-Request-ID": "a b\nc"})["X-Request-ID"]
    assert replaced != "a b\nc"
    assert len(replaced) == 32
    assert (
        len(client.get("/api/payments/x/", headers={"X-Request-ID": "x" * 129})["X-Request-ID"])
        == 32
    )


def shell_in_json_mode(code: str) -> subprocess.CompletedProcess:
    """``manage.py shell -c code`` with JSON logs; its stdout and stderr."""
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR,
        env={**os.environ, "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_a_management_command_prints_its_output_as_it_is_in_json_mode(db):
    assert shell_in_json_mode("print(5 + 10)").stdout == "15\n"


def test_a_management_command_logs_to_stderr_leaving_stdout_to_its_output(db):
    run = shell_in_json_mode(
        "import logging; logging.getLogger('apps').warning('Logged.'); print(15)"
    )
    assert run.stdout == "15\n"
    assert json.loads(run.stderr.splitlines()[-1])["message"] == "Logged."


@pytest.mark.parametrize(
    ("argv", "serves"),
    [
        (["manage.py", "runserver", "8000"], True),
        (["/usr/local/bin/gunicorn", "-c", "config/gunicorn.py", "config.wsgi"], True),
        (["/venv/bin/celery", "-A", "config.celery", "worker"], True),
        (["manage.py", "shell", "-c", "print(15)"], False),
        (["manage.py", "deadletters", "list"], False),
    ],
)
def test_only_servers_turn_printed_lines_into_json_records(argv, serves):
    assert setup.serves(argv) is serves
