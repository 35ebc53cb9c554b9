"""Throwaway Redis and RabbitMQ servers on free loopback ports, for tests that need
to own their broker (restart it, stop it, read its queues with its own tools)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
from amqp.exceptions import NotFound
from kombu import Connection

from apps.delivery.processes.brokers import (
    epmd_port,
    port_answers,
    rabbitmq_environment,
    rabbitmq_tool,
    redis_command,
    stop_epmd,
)


def free_port(*, offset: int | None = None) -> int:
    """Return a free loopback port; with ``offset``, one whose ``port + offset`` is free too."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if offset is None:
            return port
        if port + offset < 65536 and not port_answers(port + offset):
            return port
    raise RuntimeError("no free port found")


def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


class RedisServer:
    """A Redis server with an append-only file, so its queues survive a restart."""

    kind = "redis"

    def __init__(self, directory: Path, *, appendfsync: str = "everysec"):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return "redis://127.0.0.1:%d/%d" % (self.port, db)

    @property
    def broker_url(self) -> str:
        return self.url(0)

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, decode_responses=True)

    def start(self) -> None:
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 (kept by the process)
        self.process = subprocess.Popen(
            redis_command(self.port, self.directory, appendfsync=self.appendfsync),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._ping, timeout=20, what="Redis on port %d" % self.port)

    def _ping(self) -> bool:
        try:
            return self.client().ping()
        except redis.ConnectionError:
            if self.process.poll() is not None:
                log = self.directory / "redis.log"
                raise RuntimeError("redis-server exited: see %s" % log) from None
            return False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)

    def crash(self) -> None:
        """kill -9: what the append-only file has not written yet is gone."""
        if self.running:
            self.process.kill()
            self.process.wait(timeout=20)

    def reset(self) -> None:
        """Forget every queue, message and result."""
        self.client().flushall()

    def url_with_password(self, user: str, password: str) -> str:
        """A broker URL for a user (created now) who needs ``password``."""
        self.client().execute_command(
            "ACL", "SETUSER", user, "on", ">%s" % password, "~*", "&*", "+@all"
        )
        return "redis://%s:%s@127.0.0.1:%d/0" % (user, password, self.port)

    def queue_length(self, queue: str) -> int:
        """Messages waiting in ``queue``, as Redis itself counts them."""
        return self.client().llen(queue)


class RabbitMQServer:
    """A RabbitMQ node of its own (about 6 s to start)."""

    kind = "rabbitmq"

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port(offset=20000)
        self.node = "conveyor-test-%d@localhost" % self.port
        self.env = rabbitmq_environment(self.port, directory, node=self.node)
        # An Erlang port mapper of its own, stopped with the node: nothing registers with
        # the machine's, and nothing is left running (a Nix build sandbox has none).
        self.env["ERL_EPMD_PORT"] = str(free_port())
        self.process: subprocess.Popen | None = None

    @property
    def broker_url(self) -> str:
        return "amqp://guest:guest@127.0.0.1:%d//" % self.port

    def start(self) -> None:
        log = open(self.directory / "server.log", "ab")  # noqa: SIM115 (kept by the process)
        self.process = subprocess.Popen(
            [rabbitmq_tool("rabbitmq-server")],
            env=self.env,
            cwd=self.directory,  # where a crashing node writes its dumps
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._started, timeout=90, interval=0.5, what="RabbitMQ node %s" % self.node)

    def _started(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError("rabbitmq-server exited: see %s" % (self.directory / "server.log"))
        return port_answers(self.port) and self.ctl("await_startup", check=False).returncode == 0

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``rabbitmqctl`` against this node."""
        return subprocess.run(
            [rabbitmq_tool("rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.running:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        stop_epmd(epmd_port(self.env))

    def crash(self) -> None:
        """kill -9 of the node (its Erlang VM and the script that started it)."""
        if self.running:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=60)

    def queues(self) -> dict[str, int]:
        """Ready messages per queue, as ``rabbitmqctl list_queues`` reports them.

        For quorum queues these figures are statistics, refreshed every few seconds.
        """
        out = self.ctl("list_queues", "-q", "--no-table-headers", "name", "messages_ready").stdout
        return {name: int(count) for name, count in (line.split("\t") for line in out.splitlines())}

    def queue_length(self, queue: str) -> int:
        """Ready messages in ``queue`` now, as the broker answers a passive declare."""
        with Connection(self.broker_url) as conn:
            channel = conn.channel()
            try:
                return channel.queue_declare(queue, passive=True).message_count
            except NotFound:
                return 0

    def url_with_password(self, user: str, password: str) -> str:
        """A broker URL for a user (created now) who needs ``password``."""
        if user not in self.ctl("list_users", "-q", "--no-table-headers").stdout.split():
            self.ctl("add_user", user, password)
            self.ctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
        return "amqp://%s:%s@127.0.0.1:%d//" % (user, password, self.port)

    #: The durable queues a test can leave messages in: the task queue, the dead-letter
    #: queue and Celery's delayed-delivery queues (the rest are auto-deleted).
    DURABLE_QUEUES = ("default", "dead_letter", *("celery_delayed_%d" % n for n in range(28)))

    def reset(self) -> None:
        """Delete the queues a test may have filled, so the next starts with empty ones."""
        with Connection(self.broker_url) as conn:
            for name in self.DURABLE_QUEUES:
                channel = conn.channel()
                try:
                    channel.queue_delete(name)
                except NotFound:
                    pass
                finally:
                    with contextlib.suppress(Exception):
                        channel.close()
