"""Worker bootsteps: what the worker runs beside consuming."""

from __future__ import annotations

import logging

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
