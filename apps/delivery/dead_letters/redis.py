"""Redis's dead-letter queue: a list that Conveyor's Redis transport
(:mod:`apps.delivery.celery_overrides.redis_transport`) pushes to. Each move out of it
is one atomic script, so concurrent replays never duplicate a message."""

from __future__ import annotations

import base64
import json
import uuid
from contextlib import contextmanager

from .box import DeadLetterBox, RawMessage

#: Move one payload from the dead-letter list to a queue, if it is still there.
_MOVE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  if KEYS[2] ~= '' and ARGV[2] ~= '' then redis.call('LPUSH', KEYS[2], ARGV[2]) end
  return 1
end
return 0
"""


class RedisDeadLetterBox(DeadLetterBox):
    """The dead-letter queue of a Redis connection: a list; each move is one atomic script."""

    def __init__(self, connection):
        super().__init__(connection)
        self.channel = connection.default_channel
        self.client = self.channel.client
        self.prefix = self.channel.global_keyprefix
        self.move = self.client.register_script(_MOVE)

    def count(self) -> int:
        return self.client.llen(self.queue_name)

    def _payloads(self, limit: int) -> list[str]:
        # Oldest first: new dead letters are pushed on the left.
        return list(reversed(self.client.lrange(self.queue_name, -limit, -1)))

    def raw_messages(self, limit: int) -> list[RawMessage]:
        return [self._raw(p) for p in self._payloads(limit)]

    @contextmanager
    def taking(self, limit: int):
        def pairs():
            for payload in self._payloads(limit):
                yield self._raw(payload), self._remover(payload)

        yield pairs()

    def _remover(self, payload: str):
        def remove(replacement: RawMessage | None = None, queue: str = "") -> bool:
            target, data = "", ""
            if replacement is not None:
                target = self.prefix + queue
                data = json.dumps(self._envelope(json.loads(payload), replacement, queue))
            return bool(
                self.move(keys=[self.prefix + self.queue_name, target], args=[payload, data])
            )

        return remove

    @staticmethod
    def _raw(payload: str) -> RawMessage:
        envelope = json.loads(payload)
        properties = envelope.get("properties") or {}
        body = envelope.get("body") or ""
        if properties.get("body_encoding") == "base64":
            body = base64.b64decode(body)
        elif isinstance(body, str):
            body = body.encode("utf-8")
        return RawMessage(
            body=body,
            headers=envelope.get("headers") or {},
            properties=properties,
            content_type=envelope.get("content-type") or "",
            content_encoding=envelope.get("content-encoding") or "",
        )

    @staticmethod
    def _envelope(original: dict, message: RawMessage, queue: str) -> dict:
        # The shape kombu's Redis transport publishes, as a new delivery to the same
        # exchange and routing key.
        properties = dict(original.get("properties") or {})
        delivery_info = dict(properties.get("delivery_info") or {"routing_key": queue})
        delivery_info.pop("redelivered", None)
        properties.update(
            body_encoding="base64",
            delivery_tag=str(uuid.uuid4()),
            delivery_info=delivery_info,
            priority=0,
        )
        return {
            **original,
            "body": base64.b64encode(message.body).decode(),
            "headers": message.headers,
            "properties": properties,
        }
