"""Workers and beat report themselves to the operator console through the database.

A heartbeat file says a process is alive to a health check on its own machine; the
console runs in the web, often on another host or in another container. So every
:data:`REPORT_INTERVAL_SECONDS` a worker writes its :class:`ProcessReport` (node, pid,
concurrency, queues, the tasks it runs now) and beat writes its own (its last tick, each
schedule entry's last and next run), from a thread of their own (:class:`Reporter`),
which records the minute's figures too (:mod:`apps.delivery.metrics.history`). A
process that stops cleanly says so; one that was killed is seen by its last report's
age.

A report the database refuses is logged and tried again at the next interval: the
process goes on with its work.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from django.utils import timezone

from .models import ProcessReport

logger = logging.getLogger(__name__)

#: A report older than this many of its process's intervals is from a process that is
#: stuck, disconnected or gone.
STALE_AFTER_INTERVALS = 3
#: Reports of processes that stopped, or went silent, are deleted after this long.
KEEP = timedelta(hours=1)


def process_report_save(
    *, role: str, node: str, pid: int, started_at: datetime, state: dict, interval: float
) -> ProcessReport:
    """Store what a process says of itself now (``interval``: seconds until its next
    report); delete the reports gone stale for longer than :data:`KEEP`."""
    now = timezone.now()
    report, _ = ProcessReport.objects.update_or_create(
        role=role,
        node=node,
        defaults={
            "pid": pid,
            "started_at": started_at,
            "state": {**state, "interval": interval},
            "reported_at": now,
            "stopped_at": None,
        },
    )
    ProcessReport.objects.filter(reported_at__lt=now - KEEP).delete()
    return report


def process_report_stopped(*, role: str, node: str, pid: int) -> None:
    """The process stopped cleanly."""
    ProcessReport.objects.filter(role=role, node=node, pid=pid).update(stopped_at=timezone.now())


def process_reports(*, now: datetime | None = None) -> list[dict]:
    """Every process's last report, workers first, with its age and its condition:
    ``running``, ``silent`` (no report for :data:`STALE_AFTER_INTERVALS` of its
    intervals) or ``stopped``."""
    now = now or timezone.now()
    reports = []
    for report in ProcessReport.objects.order_by("-role", "node"):
        if report.stopped_at is not None:
            condition = "stopped"
        elif now - report.reported_at > timedelta(
            seconds=STALE_AFTER_INTERVALS * float(report.state.get("interval") or 15)
        ):
            condition = "silent"
        else:
            condition = "running"
        reports.append(
            {
                "report": report,
                "age": max(0.0, (now - report.reported_at).total_seconds()),
                "condition": condition,
            }
        )
    return reports


class Reporter:
    """Runs ``report()`` every ``interval`` seconds in a daemon thread (at once on
    start), and ``report()`` then ``stopped()`` once when stopped. ``guard``: a context
    manager held around each (the worker's SQLite lock, see ``celery_overrides.bootsteps``).
    """

    def __init__(
        self,
        name: str,
        *,
        report: Callable[[], object],
        stopped: Callable[[], object],
        interval: float,
        guard: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ):
        self.name = name
        self.report = report
        self.on_stop = stopped
        self.guard = guard
        self.interval = interval
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is not None:
            return
        self.stopping.clear()
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self.thread.start()

    def stop(self, *, timeout: float = 10) -> None:
        if self.thread is None:
            return
        self.stopping.set()
        self.thread.join(timeout)
        self.thread = None
        self._call(self.report)  # the last figures
        self._call(self.on_stop)

    def _run(self) -> None:
        while True:
            self._call(self.report)
            if self.stopping.wait(self.interval):
                return

    def _call(self, function: Callable[[], object]) -> None:
        from django.db import close_old_connections, connection

        with self.guard():
            try:
                close_old_connections()
                function()
            except Exception:
                logger.exception("%s: the report failed; it is made again later.", self.name)
            finally:
                if connection.vendor == "sqlite":
                    connection.close()


def process_reporter(
    role: str,
    node: str,
    *,
    app,
    queues: list[str],
    state: Callable[[], dict],
    metrics_path=None,
    guard: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> Reporter:
    """The :class:`Reporter` of a worker or beat: every ``PROCESS_REPORT_INTERVAL_SECONDS``
    its report (``state()``) and its minute's figures (the task counts in
    ``metrics_path``, the depths of ``queues`` at the broker); stopped, it says so."""
    from django.conf import settings

    from .metrics.collectors import broker_state
    from .metrics.history import MinuteRecorder, depths

    pid, started_at = os.getpid(), timezone.now()
    interval = settings.PROCESS_REPORT_INTERVAL_SECONDS
    recorder = MinuteRecorder(
        "%s:%s" % (role, node),
        metrics_path=metrics_path,
        read_queues=lambda: depths(broker_state(app, queues)),
    )

    def report():
        process_report_save(
            role=role, node=node, pid=pid, started_at=started_at, state=state(), interval=interval
        )
        recorder.record()

    return Reporter(
        "%s-report" % role,
        report=report,
        stopped=lambda: process_report_stopped(role=role, node=node, pid=pid),
        interval=interval,
        guard=guard,
    )
