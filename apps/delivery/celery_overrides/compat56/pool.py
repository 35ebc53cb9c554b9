"""Celery 5.6's prefork pool, acknowledging tasks as they finish during a warm shutdown.

During a warm shutdown the worker's event loop has stopped while the pool waits for
the running tasks. A task acknowledged late queues its acknowledgement on that event
loop when it finishes, and Celery 5.6 sends it only once every pool process has exited,
a second or two later. A worker killed in between (honcho kills at 5 seconds) leaves a
finished task unacknowledged, and it runs again on the next start. This pool sends
those acknowledgements while the pool stops, as Celery 5.7 does itself.

Selected with ``CELERY_WORKER_POOL`` on Celery 5.6, in place of
:mod:`apps.delivery.celery_overrides.pool`.
"""

from __future__ import annotations

import logging
import threading

from kombu.asynchronous import get_event_loop
from kombu.message import Message

from .. import pool

logger = logging.getLogger(__name__)

#: Seconds between two rounds of acknowledgements while the pool stops.
ACK_INTERVAL = 0.2


class TaskPool(pool.TaskPool):
    def on_stop(self):
        hub = get_event_loop()
        if hub is None or self._pool is None:
            return super().on_stop()
        stopped = threading.Event()
        sender = threading.Thread(
            target=_acknowledge_until, args=(hub, stopped), daemon=True, name="acks-on-stop"
        )
        sender.start()
        try:
            return super().on_stop()
        finally:
            stopped.set()
            sender.join(timeout=1.0)
            if not sender.is_alive():
                acknowledge_finished(hub)


def _acknowledge_until(hub, stopped: threading.Event) -> None:
    while not stopped.wait(ACK_INTERVAL):
        try:
            acknowledge_finished(hub)
        except Exception:
            logger.warning("Could not acknowledge finished tasks while stopping.", exc_info=True)


def acknowledge_finished(hub) -> None:
    """Run the acknowledgements (and rejections) waiting on the event loop ``hub``.

    Anything else waiting there (the transport's reader, say) is put back for the
    event loop: run now, it would hand new messages to a pool that is stopping.
    """
    ready = hub._pop_ready()
    while ready:
        callback = ready.pop()
        if not _is_acknowledgement(callback):
            hub.call_soon(callback)
            continue
        try:
            callback()
        except Exception as exc:
            hub.on_callback_error(callback, exc)


def _is_acknowledgement(callback) -> bool:
    # The consumer queues promise(message.ack_log_error) / (message.reject_log_error).
    fun = getattr(callback, "fun", None)
    return isinstance(getattr(fun, "__self__", None), Message) and getattr(
        fun, "__name__", None
    ) in ("ack_log_error", "reject_log_error")
