"""The last hour, minute by minute, for the operator console's overview.

Prometheus keeps the history of whatever scrapes ``/metrics``; the console keeps a short
one of its own in the database, so that an operator without Prometheus still sees the
last hour, from workers on any host. Every few seconds each worker records what its
tasks did since its previous record (read from its own group's metrics: its pool
processes count into the files of :mod:`.directory`) and the queue depths it reads at
the broker; beat records the queue depths too. Each goes into its process's
:class:`~apps.delivery.models.MinuteSample` of the current minute; samples older than
:data:`KEEP` are deleted as new ones are written.

The overview (:func:`delivery_history`) adds the processes' samples up per minute: runs
per task and outcome, the enqueue -> start latency's quantiles over the hour (as
Prometheus's ``histogram_quantile`` computes them), and each queue's depth (the highest
any process read in the minute).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from django.utils import timezone

from ..models import MinuteSample

logger = logging.getLogger(__name__)

#: The broker's holding areas, recorded beside the queues under these names: Redis's
#: messages delivered and not yet acknowledged (running, reserved, countdowns held by
#: workers), RabbitMQ's countdowns waiting in its delayed queues.
HOLDING = {"unacked": "(unacked)", "delayed": "(delayed)"}
#: How long samples are kept.
KEEP = timedelta(hours=2)
#: The overview's window.
HISTORY_MINUTES = 60


def group_counts(path: Path) -> tuple[dict, dict]:
    """The task runs (``{task: {outcome: n}}``) and the latency histogram's cumulative
    buckets (``{task: {bound: n}}``) counted so far by the process group whose metrics
    directory is ``path``."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    tasks: dict = {}
    latency: dict = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "conveyor_tasks_total":
                tasks.setdefault(sample.labels["task"], {})[sample.labels["outcome"]] = sample.value
            elif sample.name == "conveyor_task_latency_seconds_bucket":
                latency.setdefault(sample.labels["task"], {})[sample.labels["le"]] = sample.value
    return tasks, latency


def increase(now: dict, before: dict) -> dict:
    """How much each count of ``{key: {inner: n}}`` grew since ``before`` (a count that
    went down started again from 0, as Prometheus's ``increase`` reads a reset)."""
    grown: dict = {}
    for key, counts in now.items():
        for inner, value in counts.items():
            previous = before.get(key, {}).get(inner, 0)
            change = value - previous if value >= previous else value
            if change:
                grown.setdefault(key, {})[inner] = int(change)
    return grown


class MinuteRecorder:
    """Records one process's figures into its sample of the current minute.

    ``metrics_path``: its group's metrics directory, whose task counts it records (None:
    it runs no tasks); ``read_queues``: returns ``{queue: messages ready}`` (it may raise:
    the sample then has no depths).
    """

    def __init__(
        self,
        source: str,
        *,
        metrics_path: Path | None,
        read_queues: Callable[[], dict],
    ):
        self.source = source
        self.metrics_path = metrics_path
        self.read_queues = read_queues
        self.counted: tuple[dict, dict] = ({}, {})

    def record(self, *, now: datetime | None = None) -> MinuteSample:
        now = now or timezone.now()
        tasks, latency = {}, {}
        if self.metrics_path is not None:
            counts = group_counts(self.metrics_path)
            tasks = increase(counts[0], self.counted[0])
            latency = increase(counts[1], self.counted[1])
        try:
            queues = self.read_queues()
        except Exception as exc:
            logger.info("Could not read the queue depths: %s: %s", type(exc).__name__, exc)
            queues = {}
        sample = minute_sample_add(
            minute=now, source=self.source, tasks=tasks, latency=latency, queues=queues
        )
        if self.metrics_path is not None:
            # Counted only once stored: counts a failed write missed go in the next one.
            self.counted = counts
        return sample


def depths(state: dict) -> dict:
    """A broker reading (:func:`.collectors.broker_state`) as a sample keeps it: each
    queue's ready messages, and each holding area's count under its :data:`HOLDING`
    name."""
    return {
        **state["ready"],
        **{name: state[key] for key, name in HOLDING.items() if key in state},
    }


def minute_sample_add(
    *, minute: datetime, source: str, tasks: dict, latency: dict, queues: dict
) -> MinuteSample:
    """Add ``source``'s counts to its sample of ``minute``'s minute, set the depths it
    read, and delete the samples older than :data:`KEEP`."""
    minute = minute.replace(second=0, microsecond=0)
    sample, _ = MinuteSample.objects.get_or_create(minute=minute, source=source)
    sample.tasks = _added(sample.tasks, tasks)
    sample.latency = _added(sample.latency, latency)
    if queues:
        sample.queues = queues
    sample.save()
    MinuteSample.objects.filter(minute__lt=minute - KEEP).delete()
    return sample


def _added(counts: dict, more: dict) -> dict:
    total = {key: dict(inner) for key, inner in counts.items()}
    for key, inner in more.items():
        for name, value in inner.items():
            total.setdefault(key, {})[name] = total.get(key, {}).get(name, 0) + value
    return total


def delivery_history(*, minutes: int = HISTORY_MINUTES, now: datetime | None = None) -> dict:
    """The last ``minutes`` minutes (the current one last), added up from every
    process's samples:

    - ``minutes``: the minutes, oldest first;
    - ``queues``: ``{queue: [depth or None per minute]}``;
    - ``tasks``: ``{task: {outcome: [runs per minute]}}``;
    - ``latency``: ``{task: {"runs": n, "p50": s, "p99": s}}`` over the window, and the
      same for every task together under ``""``.
    """
    end = (now or timezone.now()).replace(second=0, microsecond=0)
    axis = [end - timedelta(minutes=minutes - 1 - index) for index in range(minutes)]
    position = {minute: index for index, minute in enumerate(axis)}
    queues: dict = {}
    tasks: dict = {}
    buckets: dict = {"": {}}
    for sample in MinuteSample.objects.filter(minute__gte=axis[0], minute__lte=end):
        index = position.get(sample.minute)
        if index is None:
            continue
        for queue, depth in sample.queues.items():
            series = queues.setdefault(queue, [None] * minutes)
            series[index] = max(depth, series[index] or 0)
        for task, outcomes in sample.tasks.items():
            for outcome, runs in outcomes.items():
                tasks.setdefault(task, {}).setdefault(outcome, [0] * minutes)[index] += runs
        for task, counts in sample.latency.items():
            for target in (buckets.setdefault(task, {}), buckets[""]):
                for bound, runs in counts.items():
                    target[bound] = target.get(bound, 0) + runs
    latency = {
        task: {
            "runs": int(counts.get("+Inf", 0)),
            "p50": quantile(0.5, counts),
            "p99": quantile(0.99, counts),
        }
        for task, counts in buckets.items()
        if counts.get("+Inf")
    }
    return {
        "minutes": axis,
        "queues": dict(sorted(queues.items())),
        "tasks": dict(sorted(tasks.items())),
        "latency": latency,
    }


def quantile(q: float, buckets: dict) -> float | None:
    """The ``q``-quantile of a histogram given as cumulative buckets ``{upper bound:
    count}``, interpolated linearly within its bucket as Prometheus's
    ``histogram_quantile`` does (the highest finite bound when it falls in ``+Inf``)."""
    ordered = sorted((float(bound), count) for bound, count in buckets.items())
    if not ordered or not ordered[-1][1]:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower
