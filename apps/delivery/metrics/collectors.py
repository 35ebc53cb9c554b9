"""What the web's ``/metrics`` reads at each scrape: the broker's queues, the outbox,
the heartbeat files.

Each source is read anew at every scrape, and a source that fails leaves its metrics
out and reports ``conveyor_scrape_source_up{source="..."} 0`` instead of failing the
scrape. The broker is read on a connection of its own with every wait bounded by
``timeout`` (connect, each reply), in a thread the scrape waits for at most that long
again, so a broker that is down, or that accepts connections and never answers, costs a
scrape about ``2 * timeout`` seconds at worst.

- Queues, on both brokers: the messages ready in each task queue and in the dead-letter
  queue (a passive ``queue_declare``, which both kombu transports answer with the count
  of the queue's lists or the broker's own count; an absent queue is an empty one).
- Redis: the messages delivered and not yet acknowledged (kombu's ``unacked`` hash, named
  by its documented ``unacked_key`` transport option): running, reserved by a worker,
  and countdowns, which wait in the worker on Redis.
- RabbitMQ: countdowns waiting at the broker, in Celery's native delayed delivery queues
  (``celery_delayed_0`` to ``_27``, kombu's ``native_delayed_delivery``).
- The outbox: messages not yet taken by the broker, and the age of the oldest.
- Heartbeats (``RUN_DIR/heartbeats``): how old each worker's and beat's is. These are the
  files on the web's own machine: a worker or beat elsewhere (another container) is not
  seen here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from amqp.exceptions import NotFound
from kombu.exceptions import ChannelError
from kombu.transport.native_delayed_delivery import MAX_LEVEL, level_name
from prometheus_client.core import GaugeMetricFamily

from ..broker_connections import connect_once
from ..logs.context import mask_passwords
from ..processes.health import heartbeat_dir

logger = logging.getLogger(__name__)

#: Seconds each wait on the broker may take.
BROKER_TIMEOUT_SECONDS = 1.0


class ScrapeCollector:
    """Collects the state of the broker, the outbox and the heartbeats at each scrape."""

    def __init__(
        self,
        *,
        app,
        queues: Iterable[str],
        run_dir,
        outbox_backlog: Callable[[], tuple[int, float]],
        timeout: float = BROKER_TIMEOUT_SECONDS,
    ):
        self.app = app
        self.queues = tuple(queues)
        self.run_dir = run_dir
        self.outbox_backlog = outbox_backlog
        self.timeout = timeout

    def collect(self):
        up = GaugeMetricFamily(
            "conveyor_scrape_source_up",
            "1 if the source could be read at this scrape, 0 if not (its metrics are "
            "left out): broker, database, heartbeats.",
            labels=["source"],
        )
        took = GaugeMetricFamily(
            "conveyor_scrape_source_duration_seconds",
            "How long reading the source took at this scrape.",
            labels=["source"],
        )
        for source, read in (
            ("broker", self._broker),
            ("database", self._outbox),
            ("heartbeats", self._heartbeats),
        ):
            started = time.monotonic()
            try:
                families = list(read())
            except Exception as exc:
                families, ok = [], False
                # info: a broker that is down would otherwise fill the log at every scrape
                logger.info(
                    "Metrics: could not read the %s: %s",
                    source,
                    mask_passwords("%s: %s" % (type(exc).__name__, exc)),
                )
            else:
                ok = True
            up.add_metric([source], 1 if ok else 0)
            took.add_metric([source], time.monotonic() - started)
            yield from families
        yield up
        yield took

    # -- the broker ------------------------------------------------------------

    def _broker(self):
        state = broker_state(self.app, self.queues, timeout=self.timeout)
        ready = GaugeMetricFamily(
            "conveyor_queue_messages",
            "Messages ready in the queue at the broker (task queues and dead_letter).",
            labels=["queue"],
        )
        for queue, count in state["ready"].items():
            ready.add_metric([queue], count)
        yield ready
        if "unacked" in state:
            yield GaugeMetricFamily(
                "conveyor_broker_unacked_messages",
                "Redis: messages delivered to workers and not yet acknowledged (running, "
                "reserved, and countdowns waiting in a worker).",
                value=state["unacked"],
            )
        if "delayed" in state:
            yield GaugeMetricFamily(
                "conveyor_broker_delayed_messages",
                "RabbitMQ: countdown messages waiting in the native delayed delivery queues.",
                value=state["delayed"],
            )

    # -- the outbox and the heartbeats -------------------------------------------

    def _outbox(self):
        pending, oldest_age = self.outbox_backlog()
        yield GaugeMetricFamily(
            "conveyor_outbox_pending_messages",
            "Outbox messages the broker has not taken yet.",
            value=pending,
        )
        yield GaugeMetricFamily(
            "conveyor_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox message the broker has not taken yet (0 if none).",
            value=oldest_age,
        )

    def _heartbeats(self):
        ages = GaugeMetricFamily(
            "conveyor_heartbeat_age_seconds",
            "Age of each heartbeat file in RUN_DIR/heartbeats: a worker's (by node name) "
            "is touched every 5 s while it consumes, beat's on every scheduler tick.",
            labels=["process", "node"],
        )
        directory = heartbeat_dir(self.run_dir)
        now = time.time()
        for path in sorted(directory.glob("*")) if directory.is_dir() else ():
            process, _, node = path.name.partition("-")
            try:
                modified = path.stat().st_mtime
            except FileNotFoundError:
                continue  # removed by a worker that stopped meanwhile
            ages.add_metric([process, node], max(0.0, now - modified))
        yield ages


def broker_state(app, queues: Iterable[str], *, timeout: float = BROKER_TIMEOUT_SECONDS) -> dict:
    """What the broker holds now: ``{"ready": {queue: messages}}``, and Redis's
    ``"unacked"`` or RabbitMQ's ``"delayed"`` count; within about ``2 * timeout``
    seconds per URL of a failover list, else ``TimeoutError`` (see the module's
    docstring)."""
    urls = max(1, len(str(app.conf.broker_url).split(";")))
    return within(timeout * 2 * urls, lambda: _read_broker(app, tuple(queues), timeout))


def _read_broker(app, queues: tuple[str, ...], timeout: float) -> dict:
    options = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "read_timeout": timeout,
        "write_timeout": timeout,
    }
    with app.connection_for_write(connect_timeout=timeout, transport_options=options) as connection:
        connect_once(connection)  # one attempt per URL, no waiting
        counter = PassiveCounter(connection)
        state = {"ready": {queue: counter.count(queue) for queue in queues}}
        if connection.transport.driver_type == "redis":
            channel = counter.open()
            state["unacked"] = channel.client.hlen(channel.unacked_key)
        else:
            levels = range(MAX_LEVEL + 1)
            state["delayed"] = sum(counter.count(level_name(level)) for level in levels)
        counter.close()
    return state


class PassiveCounter:
    """Counts a queue's ready messages with a passive ``queue_declare`` on one channel,
    opened again after the broker closed it (RabbitMQ does, for a queue that does not
    exist)."""

    def __init__(self, connection):
        self.connection = connection
        self.channel = None

    def open(self):
        """The channel, opened if need be."""
        if self.channel is None:
            self.channel = self.connection.channel()
        return self.channel

    def count(self, queue: str) -> int:
        try:
            return self.open().queue_declare(queue=queue, passive=True).message_count
        except ChannelError as exc:
            if str(exc.reply_code) != "404":
                raise
            if isinstance(exc, NotFound):
                self.channel = None  # RabbitMQ closes the channel
            return 0  # no such queue; on Redis, no list: no message

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None


def within(timeout: float, read: Callable[[], object]):
    """``read()``'s result, from a thread waited for ``timeout`` seconds at most;
    ``TimeoutError`` if it has not answered by then (the thread is left to its own
    timeouts)."""
    outcome: dict[str, object] = {}

    def run():
        try:
            outcome["value"] = read()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="metrics-broker-read", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError("no answer within %.1f s" % timeout)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
