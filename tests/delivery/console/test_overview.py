"""The operator console's overview, from real workers and beat on a real broker: the
queues now and over the hour, each task's runs and latency, the processes' reports."""

import re
import socket

from apps.delivery.models import ProcessReport
from apps.users.tasks import add
from tests.conftest import pointed_at
from tests.delivery.dead_letters.conftest import staff
from tests.servers import free_port, wait_until

URL = "/admin/console/"
#: Workers and beat report every second in these tests (15 s by default).
REPORTING = {"PROCESS_REPORT_INTERVAL_SECONDS": "1"}


def section(page: str, name: str) -> str:
    return page.split('id="%s"' % name)[1].split("</table>")[0]


def reported(role: str, *, stopped: bool = False, check=lambda report: True) -> ProcessReport:
    """Wait for a report of ``role`` (running, or stopped) that passes ``check``."""
    return wait_until(
        lambda: next(
            (
                report
                for report in ProcessReport.objects.filter(role=role)
                if (report.stopped_at is not None) == stopped and check(report)
            ),
            None,
        ),
        timeout=30,
        what="a %s report" % role,
    )


def test_the_overview_shows_queues_task_runs_workers_and_failing_tasks(
    client, broker, dead_letters, start_worker
):
    # given: three dead letters (two payments out of retries, one add that cannot add),
    # and a worker running again, which ran four adds
    worker = start_worker(env=REPORTING)
    node = worker.hostname.replace("%h", socket.gethostname())
    for _ in range(4):
        assert add.delay(2, 3).get(timeout=30) == 5
    report = reported(
        "worker", check=lambda report: report.node == node and report.state["running"] == []
    )
    wait_until(
        lambda: 'data-hour="succeeded">4<' in section(client_page(client), "tasks"),
        timeout=30,
        what="the four adds counted",
    )
    # when
    page = client_page(client)
    # then: the queues now, each with its chart of the hour
    queues = section(page, "queues")
    assert re.search(r'>dead_letter</a></td><td class="num">3<', queues)
    assert re.search(
        r'<td>default</td><td class="num">0</td><td><svg class="console-chart"', queues
    )
    # and the broker's holding area, now and over the hour
    holding = {
        "redis": "delivered, not yet acknowledged",
        "rabbitmq": "countdowns waiting at the broker",
    }[broker.kind]
    assert re.search(r'</a></td><td class="num">\d+</td><td><svg', queues.split(holding)[1])
    # each task's runs: the adds, and the payments that went to the dead-letter queue
    adds = page.split('id="task-apps.users.tasks.add"')[1].split("</tr>")[0]
    assert 'data-hour="started">5<' in adds  # the four, and the one that could not add
    assert 'data-hour="succeeded">4<' in adds
    assert 'data-hour="dead_lettered">1<' in adds
    assert re.search(r'data-latency="p99">\d+\.\d{3} s<', adds)
    payments = page.split('id="task-apps.payments.tasks.process_payment"')[1].split("</tr>")[0]
    assert 'data-hour="dead_lettered">2<' in payments
    # the worker from its report
    row = page.split('id="worker-%s"' % node)[1].split("</tr>")[0]
    assert "<td>%d</td>" % report.pid in row
    assert "concurrency 2" in row
    assert "running 0" in row
    assert re.search(r"\d+ s ago", row)
    failing = section(page, "failing")
    assert re.search(r"process_payment</a></td><td>2</td>", failing)
    assert re.search(r"apps.users.tasks.add</a></td><td>1</td>", failing)
    assert "cannot be read" not in page
    # when the worker stops, the overview says so
    worker.stop()
    reported("worker", stopped=True, check=lambda report: report.node == node)
    row = client_page(client).split('id="worker-%s"' % node)[1].split("</tr>")[0]
    assert "stopped" in row


def client_page(client) -> str:
    if not client.session.get("_auth_user_id"):
        client.force_login(staff("viewer", "view_dead_letters"))
    return client.get(URL).content.decode()


def test_the_overview_shows_beat_and_each_schedule_entry(client, broker, start_beat):
    # given: beat sending each periodic task every second
    beat = start_beat(env={**REPORTING, "BEAT_SCHEDULE_OVERRIDE_SECONDS": "1"})
    report = reported(
        "beat",
        check=lambda report: all(entry["runs"] for entry in report.state.get("entries", [])),
    )
    # when
    page = client_page(client)
    # then: every entry, with its last and next run
    row = page.split('id="beat-%s"' % report.node)[1].split("</tr>")[0]
    assert "last tick 20" in row
    for entry in report.state["entries"]:
        assert re.search(
            r"<strong>%s</strong> \(%s, every 1 s\): last run 20\S+, next 20"
            % (re.escape(entry["name"]), re.escape(entry["task"])),
            row,
        )
    assert len(report.state["entries"]) == 3
    # and when beat stops
    beat.stop()
    reported("beat", stopped=True)


def test_the_overview_answers_when_the_broker_cannot_be_read(client, db):
    client.force_login(staff("viewer", "view_dead_letters"))
    with pointed_at("redis://127.0.0.1:%d/0" % free_port(), "redis://127.0.0.1:1/1"):
        response = client.get(URL)
    assert response.status_code == 200
    assert 'id="unreadable-broker"' in response.content.decode()


def test_the_overview_is_for_those_allowed_to_see_dead_letters(client, db):
    client.force_login(staff("other"))
    assert client.get(URL).status_code == 403
