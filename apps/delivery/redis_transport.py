"""kombu's Redis transport, with RabbitMQ's dead-lettering.

Redis has no dead-letter exchange: a message rejected without requeue is simply
deleted. This transport moves it to the dead-letter queue instead, in the same Redis
transaction that removes it from the unacknowledged set, so it is never in neither
place. Like RabbitMQ, it leaves the message as it was and adds an ``x-death`` entry
(queue, reason, time, count).

It also counts redeliveries in an ``x-delivery-count`` header, as RabbitMQ's quorum
queues do: a message handed out again more than ``delivery_limit`` times (one that
kills its worker every time, say) is dead-lettered with reason ``delivery_limit``
instead of coming back forever.

And it honours the options ``unacked_restore_interval`` and ``unacked_restore_throttle``
(how often unacknowledged messages past their visibility timeout are handed out again)
on kombu before 5.7 too, which knows neither and sweeps every 100 seconds.

Settings select it for ``redis://`` and ``rediss://`` broker URLs
(``CELERY_BROKER_TRANSPORT``); its options come from ``CELERY_BROKER_TRANSPORT_OPTIONS``.
"""

from __future__ import annotations

import contextlib
import logging
import time

from kombu.transport import redis, virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

#: kombu 5.7 reads the restore sweep's interval and throttle from the transport options.
KOMBU_SWEEPS_AS_TOLD = hasattr(redis.Channel, "unacked_restore_interval")


class QoS(redis.QoS):
    def restore_visible(self, start=0, num=10, interval=10):
        if not KOMBU_SWEEPS_AS_TOLD:
            interval = self.channel.unacked_restore_throttle
        return super().restore_visible(start=start, num=num, interval=interval)

    def reject(self, delivery_tag, requeue=False):
        if requeue:
            return super().reject(delivery_tag, requeue=True)
        try:
            self.dead_letter_by_tag(delivery_tag)
        except self.channel.connection_errors:
            raise  # the message stays unacknowledged and comes back later
        except Exception:
            logger.critical(
                "Could not dead-letter message %s; it goes back to its queue.",
                delivery_tag,
                exc_info=True,
            )
            return super().reject(delivery_tag, requeue=True)
        # The Redis side is done; forget the delivery locally, as ack() would.
        virtual.QoS.ack(self, delivery_tag)
        return None

    def release_unacknowledged(self) -> int:
        """Make every message this channel holds unacknowledged (running, prefetched,
        countdowns) due for redelivery now, as if its visibility timeout had passed: the
        restore sweep of the next worker to start, or of a running one, hands it out
        again. Returns how many were released.

        For a worker about to die. Pushing the messages back onto their queues instead
        could lose one: a BRPOP the worker sent just before would take it, and the
        worker would be gone before reading the reply.
        """
        tags = [tag for tag in tuple(self._delivered) if tag not in self._dirty]
        if not tags:
            return 0
        with self.channel.conn_or_acquire() as client:
            # XX: only those still unacknowledged (a task may have just finished).
            return client.zadd(self.unacked_index_key, dict.fromkeys(tags, 0), xx=True, ch=True)

    def dead_letter_by_tag(self, tag, *, reason: str = "rejected") -> None:
        """Move an unacknowledged message to the dead-letter queue, atomically."""

        def move(pipe):
            payload = pipe.hget(self.unacked_key, tag)
            pipe.multi()
            self._remove_from_indices(tag, pipe)
            if payload:
                message, exchange, routing_key = loads(bytes_to_str(payload))
                self.channel.dead_letter(message, exchange, routing_key, pipe, reason=reason)

        with self.channel.conn_or_acquire() as client:
            client.transaction(move, self.unacked_key)


class Channel(redis.Channel):
    QoS = QoS

    #: The list dead letters go to (option ``dead_letter_queue``).
    dead_letter_queue = "dead_letter"
    #: Deliveries after which a message is dead-lettered (option ``delivery_limit``).
    delivery_limit = None

    from_transport_options = (
        *redis.Channel.from_transport_options,
        "dead_letter_queue",
        "delivery_limit",
    )
    if not KOMBU_SWEEPS_AS_TOLD:
        #: Seconds between two sweeps, and how many sweeps make one scan (kombu 5.7's).
        unacked_restore_interval = 10
        unacked_restore_throttle = 10
        from_transport_options += ("unacked_restore_interval", "unacked_restore_throttle")

    def dead_letter(self, payload, exchange, routing_key, pipe, *, reason: str) -> None:
        """Add ``payload`` to the dead-letter queue within ``pipe``, with an ``x-death`` entry."""
        queues = sorted(self._lookup(exchange, routing_key)) if exchange or routing_key else []
        queue = queues[0] if queues else routing_key
        headers = payload.setdefault("headers", {})
        deaths = [d for d in headers.get("x-death") or [] if d.get("queue") != queue]
        previous = next((d for d in headers.get("x-death") or [] if d.get("queue") == queue), {})
        deaths.insert(
            0,
            {
                "queue": queue,
                "reason": reason,
                "exchange": exchange,
                "routing-keys": [routing_key],
                "time": int(time.time()),
                "count": previous.get("count", 0) + 1,
            },
        )
        headers["x-death"] = deaths
        pipe.lpush(self.dead_letter_queue, dumps(payload))

    def _do_restore_message(self, payload, exchange, routing_key, pipe, leftmost=False):
        # Every way an unacknowledged message returns to its queue passes here.
        headers = payload.setdefault("headers", {})
        headers["x-delivery-count"] = int(headers.get("x-delivery-count") or 0) + 1
        if self.delivery_limit is not None and headers["x-delivery-count"] > self.delivery_limit:
            self.dead_letter(payload, exchange, routing_key, pipe, reason="delivery_limit")
            return
        super()._do_restore_message(payload, exchange, routing_key, pipe, leftmost)


class Transport(redis.Transport):
    Channel = Channel

    def register_with_event_loop(self, connection, loop):
        super().register_with_event_loop(connection, loop)
        if KOMBU_SWEEPS_AS_TOLD:
            return
        # kombu before 5.7 sweeps every 10 s: add a sweep at the interval asked for,
        # replacing the one of a previous connection.
        cycle = self.cycle
        interval = connection.client.transport_options.get(
            "unacked_restore_interval", Channel.unacked_restore_interval
        )
        previous = getattr(cycle, "conveyor_sweep", None)
        if previous is not None:
            previous.cancel()
        if 0 < interval < Channel.unacked_restore_interval:
            cycle.conveyor_sweep = loop.call_repeatedly(interval, self._sweep)

    def _sweep(self):
        # A lost connection is being re-established: the next sweep tries again.
        with contextlib.suppress(*self.connection_errors):
            self.cycle.maybe_restore_messages()
