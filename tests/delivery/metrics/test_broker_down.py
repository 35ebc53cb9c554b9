"""The web's /metrics with its broker stopped: a 200, at once, that says so."""

import time

import pytest

from tests.delivery.metrics.scraping import promtool_check, scrape, scraped_when, value


@pytest.fixture
def broker(own_broker):
    """A broker this test stops (the fixture starts it again)."""
    return own_broker


def test_a_scrape_of_the_web_with_the_broker_down_answers_at_once(broker, start_web):
    # given: the web, and its broker stopped
    web = start_web()
    scraped_when(
        web.url + "/metrics",
        lambda text: value(text, "conveyor_scrape_source_up", source="broker") == 1,
    )
    broker.server.stop()
    # when
    started = time.monotonic()
    status, text = scrape(web.url + "/metrics")
    took = time.monotonic() - started
    # then: an answer, within the broker read's bound, that says the broker was not read
    assert status == 200
    assert took < 3
    assert value(text, "conveyor_scrape_source_up", source="broker") == 0
    assert value(text, "conveyor_scrape_source_up", source="database") == 1
    assert value(text, "conveyor_queue_messages", queue="dead_letter") is None
    promtool_check(text)
