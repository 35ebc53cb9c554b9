"""Who may scrape, and the HTTP server the worker and beat serve their metrics with."""

import socket

import pytest

from apps.delivery.metrics import instruments
from apps.delivery.metrics.exposition import refusal, serve
from tests.delivery.metrics.scraping import promtool_check, scrape, value
from tests.servers import free_port


@pytest.mark.parametrize(
    ("authorization", "token", "required", "status"),
    [
        (None, "", False, None),  # development: open
        (None, "", True, 403),  # production without a token: refused
        ("Bearer s3cret", "", True, 403),
        (None, "s3cret", False, 401),
        ("Bearer wrong", "s3cret", True, 401),
        ("Basic s3cret", "s3cret", True, 401),
        ("Bearer s3cret", "s3cret", True, None),
        ("bearer  s3cret", "s3cret", False, None),
    ],
)
def test_a_scrape_needs_the_token_when_there_is_one_and_one_under_production(
    authorization, token, required, status
):
    refused = refusal(authorization, token=token, required=required)
    assert (refused[0] if refused else None) == status


@pytest.fixture
def server():
    servers = []

    def start(**options):
        options = {"address": "127.0.0.1", "token": "", "required": False, **options}
        started = serve("worker", **options)
        servers.append(started)
        return started

    yield start
    for started in servers:
        if started is not None:
            started.shutdown()
            started.server_close()


def test_the_server_serves_the_groups_metrics_to_whoever_has_the_token(server):
    # given: a count in this process group, and its server guarded by a token
    instruments.count_publication("tests.exposition")
    port = free_port()
    server(port=port, token="s3cret")
    url = "http://127.0.0.1:%d/metrics" % port
    # when / then
    assert scrape(url)[0] == 401
    assert scrape(url, token="wrong")[0] == 401
    status, text = scrape(url, token="s3cret")
    assert status == 200
    assert value(text, "conveyor_tasks_published_total", task="tests.exposition") >= 1
    promtool_check(text)


def test_a_port_already_taken_is_logged_and_nothing_is_served(server, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert server(port=port) is None
    assert "cannot listen on 127.0.0.1 port %d" % port in caplog.text
