"""Worker bootsteps: what the worker runs beside consuming (its heartbeat, the outbox
relay, its metrics server)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading

from celery import bootsteps

from ..processes.health import HEARTBEAT_INTERVAL_SECONDS, heartbeat_path, touch

logger = logging.getLogger(__name__)


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Touch ``RUN_DIR/heartbeats/worker-<node>`` while the worker consumes.

    The consumer starts its steps once it is connected and stops them when the
    connection is lost, so a fresh heartbeat means: alive, connected, consuming.
    ``python -m apps.delivery.processes.health worker`` reads it.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.timer_ref = None
        self.path = None

    def start(self, parent):
        from django.conf import settings

        self.path = heartbeat_path("worker", parent.hostname, run_dir=settings.RUN_DIR)
        self.beat()
        self.timer_ref = parent.timer.call_repeatedly(HEARTBEAT_INTERVAL_SECONDS, self.beat)

    def beat(self):
        try:
            touch(self.path)
        except OSError:
            logger.exception("Could not touch the heartbeat file %s.", self.path)

    def stop(self, parent):
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None

    def shutdown(self, parent):
        self.stop(parent)
        if self.path is not None:
            self.path.unlink(missing_ok=True)


#: Held while the outbox relay has a SQLite database open; a fork of the process waits
#: for it. The relay runs in the worker's main process, which forks the pool processes
#: (a replacement for one that died, or that Celery terminated after losing the broker).
#: SQLite's locks do not survive a fork: a process forked while another thread of its
#: parent is in a transaction finds the database "locked" or "not a database" for good
#: (https://www.sqlite.org/howtocorrupt.html, "carrying an open database connection
#: across a fork"). Other databases' connections are not shared with the child.
SQLITE_IN_USE = threading.Lock()
os.register_at_fork(
    before=SQLITE_IN_USE.acquire,
    after_in_parent=SQLITE_IN_USE.release,
    after_in_child=SQLITE_IN_USE.release,
)


class OutboxRelay(bootsteps.StartStopStep):
    """Publish what waits in the transactional outbox, in a thread of the worker's main
    process, every ``OUTBOX_RELAY_INTERVAL_SECONDS`` (at once again after a full batch).

    Every worker runs one; each message is claimed before it is published, so they never
    publish the same one twice at once (:func:`apps.delivery.outbox.relay_due`). On
    SQLite a batch holds :data:`SQLITE_IN_USE` and closes its connection when done.
    """

    #: Messages published per pass.
    BATCH = 100

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.stopped = threading.Event()
        self.thread = None

    def start(self, parent):
        self.stopped.clear()
        self.thread = threading.Thread(target=self.run, name="outbox-relay", daemon=True)
        self.thread.start()

    def run(self):
        from django.conf import settings
        from django.db import connection

        try:
            while not self.stopped.wait(settings.OUTBOX_RELAY_INTERVAL_SECONDS):
                while self.relay_batch() == self.BATCH and not self.stopped.is_set():
                    pass
        finally:
            connection.close()

    def relay_batch(self) -> int:
        """Publish one batch of what is due; return how many were sent."""
        from django.db import close_old_connections, connection

        from ..outbox import relay_due

        sqlite = connection.vendor == "sqlite"
        with SQLITE_IN_USE if sqlite else contextlib.nullcontext():
            close_old_connections()
            try:
                return relay_due(limit=self.BATCH)
            except Exception:
                logger.exception("The outbox relay failed; it tries again.")
                return 0
            finally:
                if sqlite:
                    connection.close()

    def stop(self, parent):
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
            self.thread = None


class WorkerMetrics(bootsteps.StartStopStep):
    """Serve the worker's metrics, its main process's and its pool processes', on
    ``WORKER_METRICS_PORT`` (not at all when it is 0), from a thread of the main process
    (:func:`apps.delivery.metrics.exposition.serve`)."""

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.server = None

    def start(self, parent):
        from django.conf import settings

        from ..metrics.exposition import serve

        if settings.WORKER_METRICS_PORT and self.server is None:
            self.server = serve(
                "worker",
                port=settings.WORKER_METRICS_PORT,
                address=settings.METRICS_ADDRESS,
                token=settings.METRICS_TOKEN,
                required=settings.METRICS_TOKEN_REQUIRED,
            )

    def stop(self, parent):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class WorkerReport(bootsteps.StartStopStep):
    """Report the worker to the operator console every few seconds, and record the
    minute's figures (:mod:`apps.delivery.process_reports`): its node, pid,
    concurrency and queues, and the tasks it runs now (``celery.worker.state``'s
    ``active_requests``: the requests its pool accepted; ``reserved_requests``: those it
    holds besides)."""

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.reporter = None

    def start(self, parent):
        from django.conf import settings
        from django.db import connection

        from ..metrics import directory
        from ..process_reports import process_reporter

        if self.reporter is not None:
            return
        app = parent.app
        self.reporter = process_reporter(
            "worker",
            parent.hostname,
            app=app,
            queues=[*app.amqp.queues.consume_from, settings.DEAD_LETTER_QUEUE],
            state=lambda: worker_state(parent),
            metrics_path=directory.current(),
            guard=lambda: (
                SQLITE_IN_USE if connection.vendor == "sqlite" else contextlib.nullcontext()
            ),
        )
        self.reporter.start()

    def stop(self, parent):
        if self.reporter is not None:
            self.reporter.stop()
            self.reporter = None


def worker_state(worker) -> dict:
    """What a worker reports of itself: concurrency, queues, the tasks running (oldest
    first), how many more it has reserved, and the countdowns it holds (soonest first,
    at most :data:`REPORTED_COUNTDOWNS`; on Redis a countdown waits in a worker, on
    RabbitMQ at the broker)."""
    from celery.worker import state

    running = sorted(
        (
            {"task": request.name, "id": request.id, "started": request.time_start}
            for request in list(state.active_requests)
        ),
        key=lambda entry: entry["started"] or 0,
    )
    # scheduled_requests: Celery 5.7; on 5.6 the countdowns are not listed.
    scheduled = list(getattr(state, "scheduled_requests", ()))
    countdowns = sorted(
        (
            {"task": request.name, "id": request.id, "eta": _isoformat(request.eta)}
            for request in scheduled
        ),
        key=lambda entry: entry["eta"] or "",
    )
    return {
        "concurrency": worker.concurrency,
        "queues": sorted(worker.app.amqp.queues.consume_from),
        "running": running,
        "reserved": max(0, len(state.reserved_requests) - len(running)),
        "countdowns": countdowns[:REPORTED_COUNTDOWNS],
        "countdowns_total": len(countdowns),
    }


#: The most countdowns a worker lists in its report.
REPORTED_COUNTDOWNS = 100


def _isoformat(eta) -> str | None:
    if eta is None:
        return None
    return eta.isoformat() if hasattr(eta, "isoformat") else str(eta)
