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
