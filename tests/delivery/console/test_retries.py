"""The operator console's page of work that is neither queued nor dead: a real retry
waiting for its countdown, on each broker, and an outbox message the broker has not
taken yet."""

import re
import socket

import celery

from apps.delivery.models import OutboxMessage, ProcessReport, TaskFailure
from apps.payments.tasks import process_payment
from apps.users.tasks import add
from tests.conftest import pointed_at
from tests.delivery.dead_letters.conftest import staff
from tests.servers import free_port, wait_until

URL = "/admin/console/retries/"


def test_a_retry_waiting_for_its_countdown_and_a_pending_outbox_message_are_listed(
    client, broker, start_worker, make_payment
):
    # given: a payment failing transiently, its first retry due in about ten minutes
    worker = start_worker(
        env={
            "GATEWAY_OUTAGE": "1",
            "TASK_RETRY_BACKOFF_SECONDS": "600",
            "PROCESS_REPORT_INTERVAL_SECONDS": "1",
        }
    )
    node = worker.hostname.replace("%h", socket.gethostname())
    payment = make_payment()
    result = process_payment.delay(str(payment.id))
    failure = wait_until(
        lambda: TaskFailure.objects.filter(
            task_id=result.id, next_attempt_at__isnull=False
        ).first(),
        timeout=30,
        what="the first failure recorded",
    )
    client.force_login(staff("viewer", "view_dead_letters"))
    # when
    page = client.get(URL).content.decode()
    # then: the failure, its arguments, its error and when its retry is due
    table = page.split('id="retrying-table"')[1].split("</table>")[0]
    assert result.id in table
    assert str(payment.id) in table
    assert "GatewayUnavailable" in table
    assert re.search(r"\(in \d+ min \d\d s\)", table)
    assert failure.retries == 0
    # the countdown itself: held by a worker on Redis, at the broker on RabbitMQ
    if broker.kind == "rabbitmq":
        wait_until(
            lambda: "holds 1 countdown message" in client.get(URL).content.decode(),
            timeout=30,
            what="the countdown in the delayed queues",
        )
    elif celery.VERSION >= (5, 7):  # Celery 5.6's worker keeps no list of its countdowns
        wait_until(
            lambda: ProcessReport.objects.filter(
                node=node, state__countdowns_total=1, stopped_at__isnull=True
            ).exists(),
            timeout=30,
            what="the worker's report of its countdown",
        )
        countdowns = client.get(URL).content.decode().split('id="countdowns-table"')[1]
        assert result.id in countdowns.split("</table>")[0]
    # given: no worker, and a task enqueued on commit while the broker cannot be reached
    worker.stop()
    with pointed_at("redis://127.0.0.1:%d/0" % free_port(), "redis://127.0.0.1:1/1"):
        task_id = add.delay_on_commit(1, 2)
    assert OutboxMessage.objects.get(task_id=task_id).sent_at is None
    # then: it is listed as waiting in the outbox, with the reason
    outbox = client.get(URL).content.decode().split('id="outbox-table"')[1].split("</table>")[0]
    assert task_id in outbox
    assert "apps.users.tasks.add" in outbox
    assert "Error" in outbox


def test_the_retries_page_is_for_those_allowed_to_see_dead_letters(client, db):
    client.force_login(staff("other"))
    assert client.get(URL).status_code == 403
