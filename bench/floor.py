"""The broker's floor: its plain client moving the messages, with nothing around them.

    BENCH_BROKER_URL=... python -m bench.floor        # consume until killed

Redis (redis-py): ``LPUSH`` to pre-load, one process taking them with ``BRPOP``, no
acknowledgement. RabbitMQ (py-amqp): a durable classic queue, persistent messages,
``basic_consume`` with a prefetch of :data:`PREFETCH` and a manual ack of each message.
Each message is dropped as it arrives: the floor does no work.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import amqp
import redis

#: The list or queue the floor uses.
QUEUE = "floor"
#: A body the size of a small task's arguments.
BODY = b'{"task": "add", "args": [1, 1]}'
#: Unacknowledged messages the RabbitMQ consumer may hold.
PREFETCH = 100


def preload(url: str, count: int) -> None:
    """Put ``count`` messages on :data:`QUEUE`."""
    if url.startswith("redis"):
        client = redis.Redis.from_url(url)
        with client.pipeline(transaction=False) as pipe:
            for _ in range(count):
                pipe.lpush(QUEUE, BODY)
            pipe.execute()
        return
    with _connect(url) as connection:
        channel = connection.channel()
        channel.queue_declare(QUEUE, durable=True, auto_delete=False)
        for _ in range(count):
            channel.basic_publish(amqp.Message(BODY, delivery_mode=2), "", QUEUE)


def consume(url: str) -> None:
    """Take messages from :data:`QUEUE` for ever."""
    if url.startswith("redis"):
        client = redis.Redis.from_url(url)
        while True:
            client.brpop([QUEUE], timeout=1)
    with _connect(url) as connection:
        channel = connection.channel()
        channel.queue_declare(QUEUE, durable=True, auto_delete=False)
        channel.basic_qos(0, PREFETCH, False)
        channel.basic_consume(
            QUEUE, callback=lambda message: channel.basic_ack(message.delivery_tag)
        )
        while True:
            connection.drain_events()


def _connect(url: str) -> amqp.Connection:
    """A py-amqp connection to ``url``, made on entering ``with``."""
    parts = urlsplit(url)
    connection = amqp.Connection(
        host="%s:%d" % (parts.hostname, parts.port or 5672),
        userid=parts.username or "guest",
        password=parts.password or "guest",
        virtual_host=parts.path[1:] or "/",
        heartbeat=0,
    )
    return connection


if __name__ == "__main__":
    consume(os.environ["BENCH_BROKER_URL"])
