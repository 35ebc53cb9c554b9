"""RabbitMQ's dead-letter queue: a quorum queue that the task queue's dead-letter
exchange feeds. Messages are fetched unacknowledged; closing the channel returns those
not taken, and each message is handed to one operator only."""

from __future__ import annotations

from contextlib import contextmanager

from kombu import Producer

from .box import DeadLetterBox, RawMessage, dead_letter_queue


class RabbitMQDeadLetterBox(DeadLetterBox):
    """The dead-letter queue of a RabbitMQ connection."""

    def count(self) -> int:
        channel = self.connection.channel()
        try:
            return dead_letter_queue()(channel).queue_declare(passive=True).message_count
        finally:
            channel.close()

    def raw_messages(self, limit: int) -> list[RawMessage]:
        with self.taking(limit) as pairs:
            return [message for message, _ in pairs]

    @contextmanager
    def taking(self, limit: int):
        channel = self.connection.channel()
        queue = dead_letter_queue()(channel)
        queue.declare()

        def pairs():
            for _ in range(limit):
                message = queue.get(no_ack=False, accept=None)
                if message is None:
                    return
                body = message.body
                raw = RawMessage(
                    body=body.encode("utf-8") if isinstance(body, str) else body,
                    headers=dict(message.headers or {}),
                    properties=dict(message.properties or {}),
                    content_type=message.content_type or "",
                    content_encoding=message.content_encoding or "",
                )
                yield raw, self._remover(channel, message, raw)

        try:
            yield pairs()
        finally:
            channel.close()  # unacknowledged messages go back to the queue

    def _remover(self, channel, message, raw):
        def remove(replacement: RawMessage | None = None, queue: str = "") -> bool:
            if replacement is not None:
                self._publish(channel, replacement, queue)
            message.ack()
            return True

        return remove

    def _publish(self, channel, message: RawMessage, queue: str) -> None:
        properties = message.properties
        Producer(channel).publish(
            message.body,
            exchange="",
            routing_key=queue,
            headers=message.headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            correlation_id=properties.get("correlation_id"),
            reply_to=properties.get("reply_to"),
            priority=properties.get("priority"),
            delivery_mode=2,
            retry=False,
        )
