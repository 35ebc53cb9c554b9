"""The worker's consumer never dies of a message: whatever cannot become a task request
is dead-lettered with its facts, and a message's correlation id is checked like a web
request's."""

import json
import re
import uuid

import pytest
from kombu import Producer

from apps.delivery.dead_letters import dead_letter_box
from apps.delivery.models import TaskFailure
from apps.users.tasks import add
from config import celery_app
from tests.delivery.dead_letters.test_dead_letters import dead_lettered, deadletters

#: Task messages whose headers are fine and whose JSON body is not [args, kwargs, embed].
MALFORMED_BODIES = {
    "a-mapping": {"x": 5, "y": 10},
    "one-element": [1],
    "kwargs-a-list": [[1, 2], [3], {}],
    "args-a-string": ["5, 10", {}, {}],
    "options-a-list": [[1, 2], {}, []],
}


def publish(body, *, task="apps.users.tasks.add", task_id=None, **headers):
    """Publish a task message as any client could, bypassing Celery's own checks."""
    task_id = task_id or str(uuid.uuid4())
    with celery_app.connection_for_write() as connection:
        Producer(connection).publish(
            json.dumps(body).encode(),
            exchange="tasks",
            routing_key="default",
            content_type="application/json",
            content_encoding="utf-8",
            headers={"id": task_id, "task": task, **headers},
        )
    return task_id


def test_a_malformed_body_is_dead_lettered_and_the_worker_keeps_running(broker, start_worker):
    # given
    worker = start_worker(concurrency=1)
    ids = {name: publish(body) for name, body in MALFORMED_BODIES.items()}
    # when / then: the next good message is processed by the same worker
    assert add.delay(2, 2).get(timeout=30) == 4
    assert worker.running
    assert not worker.matching("Unrecoverable error")
    dead_lettered(broker, len(ids))
    with dead_letter_box() as box:
        letters = {letter.id: letter for letter in box.list()}
    for name, task_id in ids.items():
        letter = letters[task_id]
        assert letter.reason == TaskFailure.Reason.INVALID_MESSAGE, name
        assert letter.error.startswith("InvalidTaskError: "), name
    listing = deadletters("list")
    assert all(task_id in listing for task_id in ids.values())
    assert listing.count("invalid_message") == len(ids)
    assert "keyword arguments are not a mapping" in letters[ids["kwargs-a-list"]].error


def test_a_message_without_a_task_id_is_dead_lettered_with_its_facts(broker, start_worker):
    worker = start_worker(concurrency=1)
    with celery_app.connection_for_write() as connection:
        Producer(connection).publish(
            json.dumps([[1, 2], {}, {}]).encode(),
            exchange="tasks",
            routing_key="default",
            content_type="application/json",
            content_encoding="utf-8",
            headers={"task": "apps.users.tasks.add"},
        )
    assert add.delay(1, 1).get(timeout=30) == 2
    assert worker.running
    dead_lettered(broker, 1)
    with dead_letter_box() as box:
        (letter,) = box.list()
    assert letter.id.startswith("sha1-")
    assert letter.failure is not None
    assert letter.reason == TaskFailure.Reason.INVALID_MESSAGE


@pytest.mark.parametrize(
    "correlation_id",
    ['forged\n{"level": "CRITICAL", "message": "forged line"}', "x" * 100_000],
    ids=["newline", "100-kb"],
)
@pytest.mark.parametrize("log_format", ["console", "json"])
def test_an_invalid_correlation_id_in_a_message_is_replaced_before_anything_logs_it(
    broker, start_worker, correlation_id, log_format
):
    # given
    worker = start_worker(env={"LOG_FORMAT": log_format})
    # when
    result = add.apply_async((20, 22), headers={"x_correlation_id": correlation_id})
    # then
    assert result.get(timeout=30) == 42
    worker.wait_for(r"add\[%s\] succeeded" % result.id)
    assert not [line for line in worker.lines if "forged" in line or "x" * 200 in line]
    (replaced,) = worker.matching(r"carried an invalid correlation id")
    new_id = re.search(r"using ([0-9a-f]{32})", replaced).group(1)
    task_lines = worker.matching(r"Adding 20 \+ 22")
    assert task_lines
    assert all(new_id in line for line in task_lines)
