"""The throwaway brokers of a run, as the benchmark sees them: how many messages wait
in a system's queue, what a system holds unacknowledged, the server's own process, and
how to empty them between runs.

Both are the test suite's servers (:mod:`tests.servers`) on free loopback ports:
Redis with its append-only file written every second, a RabbitMQ node of its own.
Each keeps one connection for reading, apart from every system's.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import amqp
from amqp.exceptions import NotFound

from bench.systems import System
from tests.servers import RabbitMQServer, RedisServer


class Broker:
    """A throwaway server (``self.server``) of :mod:`tests.servers`."""

    server: RedisServer | RabbitMQServer

    @property
    def url(self) -> str:
        return self.server.broker_url

    @property
    def pid(self) -> int:
        return self.server.process.pid


class Redis(Broker):
    kind = "redis"

    def __init__(self, directory: Path):
        self.server = RedisServer(directory / "redis")
        self.client = None

    def start(self) -> None:
        self.server.start()
        self.client = self.server.client()

    def stop(self) -> None:
        self.server.stop()

    @property
    def version(self) -> str:
        return self.client.info("server")["redis_version"]

    def depth(self, system: System) -> int:
        return self.client.llen(system.redis_list)

    def in_flight(self, system: System) -> int:
        return system.in_flight(self.client)

    def reset(self, system: System) -> None:
        self.client.flushall()


class RabbitMQ(Broker):
    kind = "rabbitmq"

    def __init__(self, directory: Path):
        self.server = RabbitMQServer(directory / "rabbitmq")
        self.connection = None
        self.channel = None

    def start(self) -> None:
        self.server.start()
        self.connection = amqp.Connection(
            host="127.0.0.1:%d" % self.server.port, userid="guest", password="guest", heartbeat=0
        )
        self.connection.connect()
        self.channel = self.connection.channel()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()
        self.server.stop()

    @property
    def version(self) -> str:
        return self.connection.server_properties.get("version", "")

    def depth(self, system: System) -> int:
        """Ready messages in the system's queue, from a passive declare (exact, also for
        quorum queues); 0 if it does not exist."""
        try:
            return self.channel.queue_declare(system.rabbitmq_queue, passive=True).message_count
        except NotFound:
            self.channel = self.connection.channel()
            return 0

    def in_flight(self, system: System) -> int:
        """Unknown: a passive declare counts ready messages only."""
        return 0

    def reset(self, system: System) -> None:
        """Delete the queues the system declares."""
        for queue in system.rabbitmq_queues:
            try:
                self.channel.queue_delete(queue)
            except NotFound:
                self.channel = self.connection.channel()
