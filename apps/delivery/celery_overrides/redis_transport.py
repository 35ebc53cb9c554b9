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

At a cold shutdown it makes every message its channel holds unacknowledged due for
redelivery at once (:meth:`QoS.release_unacknowledged`, which the consumer calls).

Settings select it for ``redis://`` and ``rediss://`` broker URLs
(``CELERY_BROKER_TRANSPORT``, :mod:`apps.delivery.celery_overrides`); its options come
from ``CELERY_BROKER_TRANSPORT_OPTIONS``.
"""

from __future__ import annotations

import logging
import time

from kombu.transport import redis, virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)


class QoS(redis.QoS):
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
