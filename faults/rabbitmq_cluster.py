"""A three-node RabbitMQ cluster on this machine, as it would run on three: each node
with its own name, AMQP port, distribution port and data directory, one Erlang cookie,
one port mapper of their own (nothing registers with the machine's), clustered with
``rabbitmqctl join_cluster``. It starts and tears down by itself.

Conveyor's task queues are quorum queues, replicated on every node with Raft: a queue
survives the loss of a minority of the nodes (one of three). Clients name the nodes in a
failover list (``amqp://a;amqp://b;amqp://c``), each in its own order so that they are
spread over the nodes.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from pathlib import Path

from tests.servers import RabbitMQServer, free_port, wait_until


class RabbitMQCluster:
    """Three (``size``) RabbitMQ nodes clustered; ``nodes[0]`` is the one the others
    join."""

    kind = "rabbitmq"

    def __init__(self, directory: Path, *, size: int = 3):
        self.directory = directory
        epmd, cookie = str(free_port()), secrets.token_hex(20)
        self.nodes = []
        for index in range(size):
            node = RabbitMQServer(directory / ("node%d" % (index + 1)))
            node.env["ERL_EPMD_PORT"] = epmd
            node.cookie = cookie
            self.nodes.append(node)

    @property
    def broker_url(self) -> str:
        """Every node, in order: the failover list."""
        return self.url_from(0)

    def url_from(self, first: int) -> str:
        """The failover list starting at node ``first`` (the one a client attaches to)."""
        ordered = self.nodes[first:] + self.nodes[:first]
        return ";".join(node.broker_url for node in ordered if node is not None)

    def start(self) -> None:
        for node in self.nodes:
            cookie = Path(node.env["HOME"]) / ".erlang.cookie"
            cookie.write_text(node.cookie)
            cookie.chmod(0o400)
            node.start()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.node)
            node.ctl("start_app")
        wait_until(
            lambda: self.running_nodes(first) == len(self.nodes),
            timeout=60,
            what="%d nodes in the cluster" % len(self.nodes),
        )

    def running_nodes(self, via: RabbitMQServer) -> int:
        """How many nodes ``via`` sees running in its cluster."""
        result = via.ctl("cluster_status", "--formatter", "json", check=False)
        try:
            return len(json.loads(result.stdout)["running_nodes"])
        except (ValueError, KeyError):
            return 0

    def leader(self, queue: str) -> RabbitMQServer:
        """The node that leads quorum queue ``queue`` now."""
        for via in self.alive():
            result = via.ctl(
                "list_queues", "-q", "--no-table-headers", "name", "leader", check=False
            )
            for line in result.stdout.splitlines():
                name, _, leader = line.partition("\t")
                if name == queue:
                    return next(node for node in self.nodes if node.node == leader.strip())
        raise RuntimeError("no node names a leader of %s" % queue)

    def alive(self) -> list[RabbitMQServer]:
        return [node for node in self.nodes if node.running]

    def crash(self, node: RabbitMQServer) -> float:
        """kill -9 of ``node`` (its Erlang VM and the script that started it); the time."""
        os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait(timeout=30)
        return time.monotonic()

    def stop(self) -> None:
        for node in reversed(self.nodes):
            if node.running:
                os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait(timeout=30)
        self.nodes[0].stop()  # and the port mapper
