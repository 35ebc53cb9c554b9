"""The metrics web, worker and beat processes record as they work.

Counted where it happens: a task's start, end and outcome in the pool process that runs
it (Celery's task signals, :mod:`apps.delivery.celery_overrides.signals`), a dead
letter where the message is refused (:class:`~apps.delivery.task_base.DeliveryTask`, the
worker's consumer), a publication in whichever process publishes. In prometheus_client's
multiprocess mode (:mod:`.directory`) each process writes its own files and a scrape of
the group adds them up.

The enqueue -> start latency needs the time a message was published, which Celery's
messages do not carry: every task message gets it in the header ``x_published_at``
(a Unix time) as it is published (:func:`stamp_publication`). It is measured from that
time, or from the message's ETA when it has one (a countdown, every retry), to the start
of the task body, for first deliveries only: a message delivered again (its worker died,
it was handed back) or replayed from the dead-letter queue keeps the time of its first
publication, which says nothing about queueing. Publisher and worker clocks are assumed
in step (NTP); a negative difference counts as 0.
"""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

#: The message header that carries the time a task message was published (Unix time).
PUBLISHED_AT_HEADER = "x_published_at"
#: The header in which the brokers count a message's earlier deliveries.
DELIVERY_COUNT_HEADER = "x-delivery-count"

#: What became of a task run, the ``outcome`` label of ``conveyor_tasks_total``.
OUTCOMES = ("started", "succeeded", "retried", "failed", "dead_lettered")

TASKS = Counter(
    "conveyor_tasks",
    "Task runs by task name and outcome: started (its body began), succeeded, retried "
    "(a transient failure, sent again with a countdown), failed (it raised and is not "
    "retried), dead_lettered (its message went to the dead-letter queue).",
    ["task", "outcome"],
)
RETRIES = Counter(
    "conveyor_task_retries",
    "Retries after a transient failure, by task name and exception type.",
    ["task", "error"],
)
DEAD_LETTERS = Counter(
    "conveyor_dead_letters",
    "Messages a worker sent to the dead-letter queue, by route: failed, delivery_limit, "
    "undecodable, unknown_task, invalid_message.",
    ["reason"],
)
PUBLISHED = Counter(
    "conveyor_tasks_published",
    "Task messages this process group published to the broker, by task name.",
    ["task"],
)
RUNNING = Gauge(
    "conveyor_tasks_running",
    "Task bodies running now, by task name.",
    ["task"],
    multiprocess_mode="livesum",
)
DURATION = Histogram(
    "conveyor_task_duration_seconds",
    "How long task bodies ran, by task name.",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
LATENCY = Histogram(
    "conveyor_task_latency_seconds",
    "Time from a task message's publication (or its ETA, for a countdown) to the start of "
    "its body, by task name; first deliveries only.",
    ["task"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

#: When each task running in this process started (monotonic), by task id.
_started: dict[str, float] = {}


def stamp_publication(headers: dict) -> None:
    """Put the time of publication in a message's headers (each publication anew)."""
    headers[PUBLISHED_AT_HEADER] = time.time()


def count_publication(task_name: str) -> None:
    PUBLISHED.labels(task=task_name).inc()


def task_started(task_name: str, task_id: str, request) -> None:
    """A task body is about to run: count it, and how long its message waited."""
    TASKS.labels(task=task_name, outcome="started").inc()
    RUNNING.labels(task=task_name).inc()
    waited = queue_latency(request, now=time.time())
    if waited is not None:
        LATENCY.labels(task=task_name).observe(waited)
    _started[task_id] = time.monotonic()


def task_ended(task_name: str, task_id: str) -> None:
    """A task body returned or raised (whatever its outcome)."""
    started = _started.pop(task_id, None)
    if started is None:
        return
    RUNNING.labels(task=task_name).dec()
    DURATION.labels(task=task_name).observe(time.monotonic() - started)


def task_outcome(task_name: str, outcome: str) -> None:
    TASKS.labels(task=task_name, outcome=outcome).inc()


def task_retried(task_name: str, error: BaseException | None) -> None:
    TASKS.labels(task=task_name, outcome="retried").inc()
    RETRIES.labels(task=task_name, error=type(error).__name__ if error else "").inc()


def dead_lettered(reason: str, *, task_name: str = "") -> None:
    """A message goes to the dead-letter queue by route ``reason``; ``task_name``: a task
    this worker has (its run counts as ``dead_lettered``)."""
    DEAD_LETTERS.labels(reason=str(reason)).inc()
    if task_name:
        TASKS.labels(task=task_name, outcome="dead_lettered").inc()


def queue_latency(request, *, now: float) -> float | None:
    """Seconds from the publication (or the ETA) of the message behind ``request`` to
    ``now``; None when unknown or not a first delivery."""
    published = getattr(request, PUBLISHED_AT_HEADER, None)
    if not isinstance(published, int | float) or isinstance(published, bool):
        return None
    delivery_info = getattr(request, "delivery_info", None) or {}
    if (
        delivery_info.get("redelivered")
        or getattr(request, "replayed", None)
        or _count(getattr(request, DELIVERY_COUNT_HEADER, None))
    ):
        return None
    due = max(float(published), _timestamp(getattr(request, "eta", None)) or 0.0)
    return max(0.0, now - due)


def _count(value) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _timestamp(eta) -> float | None:
    if isinstance(eta, datetime):
        return eta.timestamp()
    if isinstance(eta, str):
        try:
            return datetime.fromisoformat(eta).timestamp()
        except ValueError:
            return None
    return None
