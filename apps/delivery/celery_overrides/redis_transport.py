"""kombu's Redis transport, with an atomic fetch and RabbitMQ's dead-lettering.

kombu takes a message with ``BRPOP`` and only then, in a second command, records it as
unacknowledged: a worker killed in between loses it (celery/celery#7950), and so does
one killed while a ``BRPOP`` reply waits in its socket for prefetch credit. This
transport never pops a message it has not recorded: it polls with one Lua script,
:data:`FETCH`, which takes the first message of the first non-empty queue and records it
as unacknowledged in the same step, and it waits for work with ``BLMOVE q q RIGHT
RIGHT``, which returns as soon as the queue holds a message and leaves it where it is.
So a message is always in its queue, in the unacknowledged set, or in the dead-letter
queue. It needs Redis 7 or newer (``BLMOVE``, and the ``allow-oom`` script flag that lets
a full Redis still be drained); on an older one it logs so and fetches as kombu does.

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
from redis import Redis
from redis.exceptions import NoScriptError

logger = logging.getLogger(__name__)

#: Take the first message of the first non-empty list among the queues ``KEYS[1..n]``
#: and record it as unacknowledged (``KEYS[n+1]``, the hash, and ``KEYS[n+2]``, the
#: index scored by ``ARGV[1]``, the time), as kombu's ``QoS.append`` does, in one step.
#: Returns ``{queue, message}``, or nil when every queue is empty. An item that is not
#: a kombu message goes to the dead-letter list (``KEYS[n+3]``) as it is, never lost.
#: ``allow-oom``: a full Redis (noeviction) must still be drained.
FETCH = """#!lua flags=allow-oom
local n = tonumber(ARGV[2])
for i = 1, n do
  local item = redis.call('RPOP', KEYS[i])
  if item then
    local ok, message = pcall(cjson.decode, item)
    local properties = ok and type(message) == 'table' and message['properties']
    local info = type(properties) == 'table' and properties['delivery_info']
    local tag = type(properties) == 'table' and properties['delivery_tag']
    if type(info) == 'table' and type(tag) == 'string' then
      local route = cjson.encode(info['exchange'] or '') .. ','
        .. cjson.encode(info['routing_key'] or '')
      redis.call('HSET', KEYS[n + 1], tag, '[' .. item .. ',' .. route .. ']')
      redis.call('ZADD', KEYS[n + 2], ARGV[1], tag)
      return {KEYS[i], item}
    end
    redis.call('LPUSH', KEYS[n + 3], '{"body": ' .. cjson.encode(item)
      .. ', "content-type": "application/octet-stream", "content-encoding": "binary"'
      .. ', "headers": {"x-death": [{"queue": ' .. cjson.encode(KEYS[i])
      .. ', "reason": "undecodable", "count": 1, "time": ' .. ARGV[3] .. '}]}'
      .. ', "properties": {"delivery_info": {"routing_key": ' .. cjson.encode(KEYS[i]) .. '}}}')
  end
end
return nil
"""


class QoS(redis.QoS):
    def append(self, message, delivery_tag):
        if self.channel.recorded(delivery_tag):
            # FETCH recorded it in Redis already: only the local bookkeeping is left.
            return virtual.QoS.append(self, message, delivery_tag)
        return super().append(message, delivery_tag)

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

    #: The poll command in flight: "FETCH" (atomic take), "WAIT" (for a message to
    #: arrive), or "BRPOP" (kombu's own, on a Redis older than 7); and the next one.
    _poll = None
    _next_poll = "FETCH"
    #: The SHA1 of :data:`FETCH` once loaded; False when this Redis cannot run it.
    _fetch_sha = None

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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: Delivery tags FETCH recorded, until QoS.append has seen them.
        self._recorded = set()
        #: Queues consumed without acknowledgements: nothing to record for them.
        self._unacknowledged_queues = set()

    def recorded(self, delivery_tag) -> bool:
        """Whether FETCH recorded ``delivery_tag`` as unacknowledged (asked once)."""
        try:
            self._recorded.remove(delivery_tag)
        except KeyError:
            return False
        return True

    def basic_consume(self, queue, no_ack, *args, **kwargs):
        if no_ack:
            self._unacknowledged_queues.add(queue)
        else:
            self._unacknowledged_queues.discard(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    # -- the atomic fetch ---------------------------------------------------------

    def _brpop_start(self, timeout=None):
        if not self._can_fetch():
            self._poll = "BRPOP"
            return super()._brpop_start(timeout)
        if timeout is None:
            timeout = self.brpop_timeout
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        keys = [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]
        self._poll = self._next_poll
        if self._poll == "WAIT":
            # FETCH found nothing: wait for the first queue to hold a message (it stays
            # there); the others are looked at by the FETCH after it (within timeout).
            first = self.global_keyprefix + keys[0]
            command = ("BLMOVE", first, first, "RIGHT", "RIGHT", timeout or 0)
        else:
            command = self._fetch_command(keys)
        self._in_poll = self.client.connection
        self._brpop_sent_at = time.monotonic()
        self.client.connection.send_command(*command)

    def _brpop_read(self, **options):
        if self._poll == "BRPOP":
            return super()._brpop_read(**options)
        try:
            try:
                reply = self.client.parse_response(self.client.connection, self._poll, **options)
            except self.connection_errors:
                # Reconnect on the next poll, as kombu does.
                self.client.connection.disconnect()
                raise
            except NoScriptError:
                self._fetch_sha = None  # Redis restarted, or its scripts were flushed
                reply = None
            # After a WAIT, or a FETCH that took a message, FETCH; after an empty one, WAIT.
            self._next_poll = "WAIT" if self._poll == "FETCH" and not reply else "FETCH"
            if self._poll == "WAIT" or not reply:
                raise virtual.Empty()
            return self._deliver_fetched(*reply)
        finally:
            self._in_poll = None
            flush_reauth = getattr(self, "_flush_brpop_reauth", None)  # kombu 5.7
            if flush_reauth is not None:
                flush_reauth()

    def _deliver_fetched(self, key, item) -> bool:
        key = bytes_to_str(key)[len(self.global_keyprefix) :]
        queue = key.rsplit(self.sep, 1)[0]
        payload = loads(bytes_to_str(item))
        tag = payload["properties"]["delivery_tag"]
        if queue in self._unacknowledged_queues:
            self.qos._remove_from_indices(tag).execute()
        else:
            self._recorded.add(tag)
        self._queue_cycle.rotate(queue)
        self.connection._deliver(payload, queue)
        return True

    def _fetch_command(self, queue_keys: list[str]) -> tuple:
        """The command that runs FETCH on these queue keys, every key prefixed."""
        prefix, now = self.global_keyprefix, time.time()
        keys = [prefix + key for key in queue_keys]
        keys += [prefix + self.unacked_key, prefix + self.unacked_index_key]
        keys.append(prefix + self.dead_letter_queue)
        return ("EVALSHA", self._fetch_sha, len(keys), *keys, now, len(queue_keys), int(now))

    def _can_fetch(self) -> bool:
        """Load FETCH once; False on a Redis that cannot run it (older than 7)."""
        if self._fetch_sha is None:
            try:
                self._fetch_sha = self.client.script_load(FETCH)
            except self.ResponseError as exc:
                logger.warning(
                    "This Redis cannot run Conveyor's atomic fetch (%s): it needs Redis 7 or "
                    "newer. Messages are fetched as kombu does, and a worker killed just "
                    "after taking one can lose it.",
                    exc,
                )
                self._fetch_sha = False
        return bool(self._fetch_sha)

    def _get(self, queue):
        # basic_get: one FETCH on this queue, in this thread.
        if not self._can_fetch():
            return super()._get(queue)
        keys = [self._q_for_pri(queue, pri) for pri in self.priority_steps]
        with self.conn_or_acquire() as client:
            # Redis's own execute_command: kombu's prefixing would rewrite the first key only.
            reply = Redis.execute_command(client, *self._fetch_command(keys))
        if not reply:
            raise virtual.Empty()
        payload = loads(bytes_to_str(reply[1]))
        self._recorded.add(payload["properties"]["delivery_tag"])
        return payload

    def basic_get(self, queue, no_ack=False, **kwargs):
        message = super().basic_get(queue, no_ack=no_ack, **kwargs)
        if message is not None and no_ack and self.recorded(message.delivery_tag):
            self.qos._remove_from_indices(message.delivery_tag).execute()
        return message

    # -- dead letters and redeliveries ------------------------------------------------

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
