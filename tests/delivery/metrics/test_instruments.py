"""The enqueue -> start latency: from the message's publication, or its ETA, for first
deliveries only."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from apps.delivery.metrics.instruments import (
    PUBLISHED_AT_HEADER,
    queue_latency,
    stamp_publication,
)

NOW = 1_800_000_000.0


def request(**fields):
    """A task request as Celery makes it from a message's headers."""
    message = SimpleNamespace(delivery_info={}, eta=None)
    message.__dict__.update(fields)
    return message


def test_every_publication_is_stamped_anew():
    headers = {PUBLISHED_AT_HEADER: 1.0}
    stamp_publication(headers)
    assert headers[PUBLISHED_AT_HEADER] > 1_700_000_000


def test_the_latency_runs_from_the_publication():
    assert queue_latency(request(x_published_at=NOW - 0.25), now=NOW) == 0.25


def test_a_countdown_counts_from_its_eta_not_from_its_publication():
    eta = datetime.fromtimestamp(NOW - 0.5, tz=UTC).isoformat()
    assert queue_latency(request(x_published_at=NOW - 30, eta=eta), now=NOW) == 0.5


def test_a_publisher_clock_ahead_counts_as_no_wait():
    assert queue_latency(request(x_published_at=NOW + 2), now=NOW) == 0.0


@pytest.mark.parametrize(
    "fields",
    [
        {},  # published by a client that does not stamp
        {"x_published_at": "yesterday"},
        {"x_published_at": NOW - 1, "delivery_info": {"redelivered": True}},
        {"x_published_at": NOW - 1, "x-delivery-count": 1},
        {"x_published_at": NOW - 1, "replayed": 1},
    ],
)
def test_no_latency_without_a_stamp_or_for_a_delivery_that_is_not_the_first(fields):
    assert queue_latency(request(**fields), now=NOW) is None
