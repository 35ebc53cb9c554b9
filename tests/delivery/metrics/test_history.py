"""The console's minute-by-minute history: samples added up per minute, counters that
restart, and quantiles as Prometheus computes them."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.delivery.console.overview import chart
from apps.delivery.metrics.history import (
    delivery_history,
    depths,
    increase,
    minute_sample_add,
    quantile,
)
from apps.delivery.models import MinuteSample

NOW = datetime(2026, 12, 6, 12, 30, 40, tzinfo=UTC)


def test_a_quantile_is_interpolated_within_its_bucket():
    # 10 runs: 5 under 0.1 s, 4 more under 1 s, 1 over 1 s
    buckets = {"0.1": 5, "1.0": 9, "+Inf": 10}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.7, buckets) == pytest.approx(0.1 + 0.9 * 2 / 4)
    # in the +Inf bucket: the highest finite bound
    assert quantile(0.99, buckets) == 1.0
    assert quantile(0.5, {"0.1": 0, "+Inf": 0}) is None


def test_an_increase_reads_a_counter_that_went_down_as_a_restart():
    before = {"add": {"started": 10, "succeeded": 9}}
    now = {"add": {"started": 12, "succeeded": 3}, "mul": {"started": 1}}
    assert increase(now, before) == {"add": {"started": 2, "succeeded": 3}, "mul": {"started": 1}}


def test_the_history_adds_up_every_process_per_minute(db):
    # given: two workers' samples in two minutes, one of them twice in a minute
    earlier = NOW - timedelta(minutes=2)
    minute_sample_add(
        minute=earlier,
        source="worker:a",
        tasks={"add": {"started": 3, "succeeded": 3}},
        latency={"add": {"0.1": 3, "+Inf": 3}},
        queues={"default": 7},
    )
    minute_sample_add(
        minute=earlier + timedelta(seconds=15),
        source="worker:a",
        tasks={"add": {"started": 1, "failed": 1}},
        latency={"add": {"0.1": 0, "+Inf": 1}},
        queues={"default": 5},
    )
    minute_sample_add(
        minute=NOW,
        source="worker:b",
        tasks={"add": {"started": 2}},
        latency={},
        queues={"default": 0, "dead_letter": 1},
    )
    # and one from three hours ago, deleted as the others were written
    MinuteSample.objects.create(minute=NOW - timedelta(hours=3), source="worker:a")
    minute_sample_add(minute=NOW, source="worker:a", tasks={}, latency={}, queues={})
    assert not MinuteSample.objects.filter(minute__lt=NOW - timedelta(hours=2)).exists()
    # when
    history = delivery_history(minutes=5, now=NOW)
    # then
    assert history["minutes"][-1] == NOW.replace(second=0)
    assert history["tasks"]["add"]["started"] == [0, 0, 4, 0, 2]
    assert history["tasks"]["add"]["failed"] == [0, 0, 1, 0, 0]
    assert history["queues"]["default"] == [None, None, 5, None, 0]
    assert history["queues"]["dead_letter"] == [None, None, None, None, 1]
    assert history["latency"]["add"]["runs"] == 4
    assert history["latency"]["add"]["p50"] == pytest.approx(0.1 * 2 / 3)
    assert history["latency"][""]["runs"] == 4


def test_a_chart_breaks_where_there_was_no_reading():
    svg = str(chart([1, 2, None, 4]))
    assert svg.count("<polyline") == 2
    assert 'aria-label="last hour, peak 4"' in svg
    assert chart([None, None]) == ""


def test_a_sample_keeps_the_queues_and_the_brokers_holding_area():
    redis = {"ready": {"default": 2, "dead_letter": 1}, "unacked": 3}
    assert depths(redis) == {"default": 2, "dead_letter": 1, "(unacked)": 3}
    rabbitmq = {"ready": {"default": 0}, "delayed": 4}
    assert depths(rabbitmq) == {"default": 0, "(delayed)": 4}
