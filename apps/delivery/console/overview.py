"""The operator console's overview (``/admin/console/``) and its page of work waiting to
be tried again (``/admin/console/retries/``).

The overview shows the delivery system now, as a ``/metrics`` scrape reads it
(:func:`apps.delivery.metrics.views.scrape_collector`: the broker's queues, the outbox,
each source bounded and reported unreadable rather than failing the page), and the last
hour minute by minute (:mod:`apps.delivery.metrics.history`): each queue's depth, each
task's runs by outcome, the enqueue -> start latency. The workers and beat are listed
from their reports (:mod:`apps.delivery.process_reports`), which reach the web
wherever they run. It refreshes itself.

The retries page lists what is neither queued nor dead: the failures waiting for their
retry's countdown (from the failure facts, on both brokers), the countdowns the workers
hold (Redis) or the broker's delayed queues count (RabbitMQ), and the outbox messages the
broker has not taken yet.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.db.models import Count, Min, Q
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from ..metrics.history import HOLDING, delivery_history
from ..metrics.instruments import OUTCOMES
from ..metrics.views import scrape_collector
from ..models import OperatorAction, OutboxMessage, ProcessReport, TaskFailure
from ..process_reports import process_reports
from .dead_letters import PAGE_SIZE, VIEW, arguments_text, console_context, require_permission

#: Seconds between two refreshes of the overview.
OVERVIEW_REFRESH_SECONDS = 10
#: A chart's size in pixels.
CHART_WIDTH, CHART_HEIGHT = 180, 36
#: The task table's short headings for the outcomes of ``conveyor_tasks_total``.
OUTCOME_HEADINGS = {
    "started": "started",
    "succeeded": "ok",
    "retried": "retried",
    "failed": "failed",
    "dead_lettered": "dead",
}


@staff_member_required
def overview(request):
    require_permission(request, VIEW)
    now = system_now()
    history = delivery_history()
    failing = (
        TaskFailure.objects.values("task_name")
        .annotate(
            dead=Count("id", filter=Q(dead_lettered_at__isnull=False)),
            retrying=Count("id", filter=Q(dead_lettered_at__isnull=True)),
            since=Min("first_failed_at"),
        )
        .order_by("-dead", "-retrying", "task_name")
    )
    return render(
        request,
        "delivery/console/overview.html",
        {
            **console_context(request),
            "title": "Delivery overview",
            "now": now,
            "queues": queue_rows(now, history["queues"]),
            "tasks": task_rows(history),
            "latency": history["latency"].get(""),
            "processes": process_rows(),
            "failing": failing,
            "actions": OperatorAction.objects.all()[:5],
            "refresh": OVERVIEW_REFRESH_SECONDS,
            "outcomes": [OUTCOME_HEADINGS[name] for name in OUTCOMES],
        },
    )


@staff_member_required
def retries(request):
    require_permission(request, VIEW)
    waiting = TaskFailure.objects.filter(dead_lettered_at__isnull=True).order_by(
        "next_attempt_at", "last_failed_at"
    )
    page = Paginator(waiting, PAGE_SIZE).get_page(request.GET.get("page"))
    clock = timezone.now()
    for failure in page:
        failure.arguments = arguments_text(failure.args, failure.kwargs)
        if failure.next_attempt_at is not None:
            failure.due_in = _duration((failure.next_attempt_at - clock).total_seconds())
    countdowns, held = [], 0
    for report in ProcessReport.objects.filter(role="worker", stopped_at__isnull=True):
        held += report.state.get("countdowns_total", 0)
        countdowns += [
            {**entry, "node": report.node} for entry in report.state.get("countdowns", [])
        ]
    countdowns.sort(key=lambda entry: entry.get("eta") or "")
    pending = OutboxMessage.objects.filter(sent_at__isnull=True).order_by("id")
    return render(
        request,
        "delivery/console/retries.html",
        {
            **console_context(request),
            "title": "Waiting to be tried again",
            "clock": clock,
            "page": page,
            "now": system_now(),
            "countdowns": countdowns,
            "held": held,
            "pending": pending[:PAGE_SIZE],
            "pending_total": pending.count(),
        },
    )


def system_now() -> dict:
    """The broker's queues, the outbox and the heartbeats, read as a scrape reads them."""
    now = {"queues": {}, "heartbeats": [], "up": {}, "values": {}}
    for family in scrape_collector().collect():
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            if family.name == "conveyor_queue_messages":
                now["queues"][labels["queue"]] = int(value)
            elif family.name == "conveyor_heartbeat_age_seconds":
                now["heartbeats"].append({**labels, "age": value})
            elif family.name == "conveyor_scrape_source_up":
                now["up"][labels["source"]] = bool(value)
            elif not labels:
                now["values"][family.name.removeprefix("conveyor_")] = value
    return now


def queue_rows(now: dict, series: dict) -> list[dict]:
    """Each queue, then the broker's holding areas: the depth now, the chart over the
    hour and the hour's peak, with what the row is called and where it links."""
    current = {**now["queues"]}
    for key, name in HOLDING.items():
        value = now["values"].get("broker_%s_messages" % key)
        if value is not None:
            current[name] = int(value)
    retries = reverse("console-retries")
    labels = {
        settings.DEAD_LETTER_QUEUE: (settings.DEAD_LETTER_QUEUE, reverse("dead-letters")),
        HOLDING["unacked"]: (
            "delivered, not yet acknowledged (running, reserved, countdowns)",
            retries,
        ),
        HOLDING["delayed"]: ("countdowns waiting at the broker", retries),
    }
    holding = set(HOLDING.values())
    rows = []
    for queue in sorted(set(current) | set(series), key=lambda name: (name in holding, name)):
        values = series.get(queue, [])
        seen = [value for value in values if value is not None]
        label, link = labels.get(queue, (queue, None))
        rows.append(
            {
                "queue": queue,
                "label": label,
                "link": link,
                "now": current.get(queue),
                "chart": chart(values),
                "peak": max(seen) if seen else None,
            }
        )
    return rows


def task_rows(history: dict) -> list[dict]:
    """Each task that ran in the hour: runs started per minute as a chart, the last
    complete minute's and the hour's runs by outcome, the latency's p50 and p99."""
    rows = []
    for task, outcomes in history["tasks"].items():
        rows.append(
            {
                "task": task,
                "chart": chart(outcomes.get("started", [])),
                "minute": [(name, outcomes.get(name, [0, 0])[-2]) for name in OUTCOMES],
                "hour": [(name, sum(outcomes.get(name, []))) for name in OUTCOMES],
                "latency": history["latency"].get(task),
            }
        )
    return rows


def process_rows() -> list[dict]:
    """The workers' and beat's reports, with what the overview shows of them."""
    rows = []
    for entry in process_reports():
        state = entry["report"].state
        running = state.get("running", [])
        rows.append(
            {
                **entry,
                "running": [
                    "%s[%s] %s" % (task["task"], task["id"], _since(task.get("started")))
                    for task in running
                ],
            }
        )
    return rows


def _since(started: float | None) -> str:
    if not started:
        return ""
    seconds = max(0.0, timezone.now().timestamp() - started)
    return "for %s" % _duration(seconds)


def _duration(seconds: float) -> str:
    """``37 s``, ``4 min 05 s``, ``2 h 03 min``."""
    seconds = max(0, round(seconds))
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    if hours:
        return "%d h %02d min" % (hours, minute)
    if minutes:
        return "%d min %02d s" % (minute, second)
    return "%d s" % second


def chart(values: list) -> str:
    """An inline SVG line chart of ``values`` (None: no reading; the line breaks there),
    scaled to its peak; empty when there is no value."""
    known = [value for value in values if value is not None]
    if not known:
        return ""
    peak = max(known) or 1
    step = CHART_WIDTH / max(1, len(values) - 1)
    lines, current = [], []
    for index, value in enumerate(values):
        if value is None:
            if current:
                lines.append(current)
            current = []
            continue
        y = CHART_HEIGHT - 2 - (CHART_HEIGHT - 4) * value / peak
        current.append("%.1f,%.1f" % (index * step, y))
    if current:
        lines.append(current)
    # a lone reading is drawn as a dot
    lines = [points * 2 if len(points) == 1 else points for points in lines]
    polylines = format_html_join(
        "",
        '<polyline points="{}" fill="none" stroke="currentColor" stroke-width="1.5" '
        'stroke-linecap="round"/>',
        ((" ".join(points),) for points in lines),
    )
    return format_html(
        '<svg class="console-chart" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="{}"><rect width="100%" height="100%" class="console-chart-area"/>'
        "{}</svg>",
        CHART_WIDTH,
        CHART_HEIGHT,
        CHART_WIDTH,
        CHART_HEIGHT,
        "last hour, peak %s" % max(known),
        polylines,
    )
