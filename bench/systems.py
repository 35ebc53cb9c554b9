"""The task systems the benchmark compares: for each, where its messages wait, how to
fill its queue, how to run its worker, and what it holds unacknowledged on Redis.

Every worker runs two processes, so that the systems compare at the same parallelism:
Celery ``-c 2``, Dramatiq ``-p 2`` with its default 8 threads each. The floor is one
process: the broker's client alone is not what parallelism would speed up.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from faults.stack import Database
from tests.processes import BASE_DIR, procfile
from tests.servers import RabbitMQServer

#: Celery's worker flags, the same for every Celery system.
CELERY_WORKER_FLAGS = ("-c", "2", "-l", "warning", "--without-gossip", "--without-mingle")


def base_environment() -> dict[str, str]:
    """This process's environment without anything a system reads its configuration
    from, with this virtualenv's commands first on ``PATH``."""
    prefixes = ("CELERY_", "DATABASE_", "DJANGO_", "BENCH_", "dramatiq_", "LOG_", "RUN_DIR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PATH"] = "%s:%s" % (Path(sys.executable).parent, env.get("PATH", ""))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class System:
    """A task system under test."""

    #: Its name on the command line and in the table.
    name = ""
    #: The Redis list its messages wait in.
    redis_list = ""
    #: The RabbitMQ queue its messages wait in.
    rabbitmq_queue = ""
    #: The RabbitMQ queues it declares, deleted between runs.
    rabbitmq_queues: tuple[str, ...] = ()
    #: Run only when named with ``--system``.
    ablation = False
    #: Messages its worker may hold unacknowledged on RabbitMQ (all its processes): at
    #: most this many are still in flight when the clock stops there.
    rabbitmq_prefetch = 0

    def environment(self, *, broker_url: str, redis_url: str, directory: Path) -> dict[str, str]:
        """The environment of its pre-load and worker processes. ``redis_url``: a Redis
        database for results, whatever the broker."""
        return {**base_environment(), "BENCH_BROKER_URL": broker_url, "BENCH_RESULT_URL": redis_url}

    def prepare(self, env: dict[str, str]) -> None:
        """What must happen once before its first run."""

    def finish(self, env: dict[str, str]) -> None:
        """What must happen once after its last run."""

    def preload_argv(self, count: int) -> list[str]:
        return [sys.executable, "-m", "bench.preload", self.name, str(count)]

    def worker_argv(self) -> list[str]:
        raise NotImplementedError

    def in_flight(self, client: redis.Redis) -> int:
        """Messages taken from the Redis list and not acknowledged yet."""
        return 0


class Floor(System):
    """The broker's plain client, one consumer process (:mod:`bench.floor`)."""

    name = "floor"
    redis_list = rabbitmq_queue = "floor"
    rabbitmq_queues = ("floor",)
    rabbitmq_prefetch = 100

    def worker_argv(self) -> list[str]:
        return [sys.executable, "-m", "bench.floor"]


class KombuUnacked:
    """A kombu Redis consumer: a message it took waits in the ``unacked`` hash until it
    is acknowledged (kombu's ``Channel.unacked_key``, which Conveyor's transport keeps)."""

    def in_flight(self, client: redis.Redis) -> int:
        return client.hlen("unacked")


class BareCelery(KombuUnacked, System):
    """``Celery("bare", broker=URL)`` with its defaults (:mod:`bench.bare`)."""

    name = "celery"
    module = "bench.bare"
    redis_list = rabbitmq_queue = "celery"
    rabbitmq_queues = ("celery",)
    #: Celery's worker_prefetch_multiplier (4) times the pool's processes.
    rabbitmq_prefetch = 4 * 2

    def worker_argv(self) -> list[str]:
        return [
            *(sys.executable, "-m", "celery", "-A", self.module, "worker", "-P", "prefork"),
            *CELERY_WORKER_FLAGS,
            "--without-heartbeat",
        ]


class Cookiecutter(BareCelery):
    """Celery configured as cookiecutter-django does (:mod:`bench.cookiecutter`)."""

    name = "cookiecutter"
    module = "bench.cookiecutter"


class Dramatiq(System):
    """Dramatiq's defaults (:mod:`bench.dramatiq_app`).

    On Redis a message id waits in the list ``dramatiq:default``, its body in the hash
    ``dramatiq:default.msgs``; a fetched id sits in the set
    ``dramatiq:__acks__.<worker id>.default`` until its ack removes it (Dramatiq's
    ``brokers/redis/dispatch.lua``).
    """

    name = "dramatiq"
    redis_list = "dramatiq:default"
    rabbitmq_queue = "default"
    rabbitmq_queues = ("default", "default.DQ", "default.XQ")
    #: Dramatiq's queue prefetch (twice its threads) in each process.
    rabbitmq_prefetch = 2 * 8 * 2

    def environment(self, *, broker_url: str, redis_url: str, directory: Path) -> dict[str, str]:
        # pika reads the virtual host "/" from a URL only as %2F, and "//" as "".
        if broker_url.startswith("amqp") and urlsplit(broker_url).path == "//":
            broker_url = urlunsplit(urlsplit(broker_url)._replace(path="/%2F"))
        return super().environment(broker_url=broker_url, redis_url=redis_url, directory=directory)

    def worker_argv(self) -> list[str]:
        return [sys.executable, "-m", "dramatiq", "bench.dramatiq_app", "-p", "2"]

    def in_flight(self, client: redis.Redis) -> int:
        acks = client.scan_iter(match="dramatiq:__acks__.*.default")
        return sum(client.scard(key) for key in acks)


class Conveyor(KombuUnacked, System):
    """This project as shipped: ``apps.users.tasks.add`` sent as a task that keeps no
    result (Conveyor's default; bare Celery has no result backend at all), the
    Procfile's worker command with ``-l warning -c 2 --without-gossip --without-mingle``,
    the development settings on a scratch SQLite database.

    Its queue is ``default`` (exchange ``tasks``): a quorum queue on RabbitMQ, a list
    read by Conveyor's own transport on Redis. Results go where its settings send them:
    the broker's Redis, next database, or ``rpc://`` on RabbitMQ.
    """

    name = "conveyor"
    redis_list = rabbitmq_queue = "default"
    rabbitmq_queues = RabbitMQServer.DURABLE_QUEUES
    #: CELERY_WORKER_PREFETCH_MULTIPLIER (1) times the pool's processes.
    rabbitmq_prefetch = 1 * 2

    def environment(self, *, broker_url: str, redis_url: str, directory: Path) -> dict[str, str]:
        return {
            **base_environment(),
            "DJANGO_SETTINGS_MODULE": "config.settings.dev",
            "CELERY_BROKER_URL": broker_url,
            "DATABASE_URL": "sqlite:///%s" % (directory / "conveyor.sqlite3"),
            "LOG_LEVEL": "WARNING",
            "RUN_DIR": str(directory / "conveyor"),
        }

    def prepare(self, env: dict[str, str]) -> None:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            env=env,
            cwd=BASE_DIR,
            check=True,
            capture_output=True,
        )

    def worker_argv(self) -> list[str]:
        argv = shlex.split(procfile()["worker"])
        level = argv.index("-l")
        if argv[0] != "python" or argv[level + 1] != "info":
            raise ValueError("the Procfile's worker command changed: %s" % procfile()["worker"])
        argv[0] = sys.executable
        argv[level : level + 2] = []
        return [*argv, *CELERY_WORKER_FLAGS]


class ConveyorResults(Conveyor):
    """Conveyor with ``add`` as shipped: it keeps its result (``add.delay(5, 10).get()``),
    and records STARTED, two writes to the result backend per task."""

    name = "conveyor-results"


class ConveyorVariant(Conveyor):
    """Conveyor with a classic queue instead of a quorum queue
    (:mod:`bench.conveyor_classic`), or ``WORKER_PREFETCH_MULTIPLIER=4`` instead of 1:
    an ablation, run only when asked for (``--system``)."""

    ablation = True

    def __init__(self, *, queue_type: str = "quorum", prefetch: int = 1):
        self.queue_type, self.prefetch = queue_type, prefetch
        parts = ["conveyor"] + ["classic"] * (queue_type == "classic")
        self.name = "-".join(parts + ["prefetch%d" % prefetch] * (prefetch != 1))
        self.rabbitmq_prefetch = prefetch * 2

    def environment(self, *, broker_url: str, redis_url: str, directory: Path) -> dict[str, str]:
        env = super().environment(broker_url=broker_url, redis_url=redis_url, directory=directory)
        if self.queue_type == "classic":
            env["DJANGO_SETTINGS_MODULE"] = "bench.conveyor_classic"
        env["WORKER_PREFETCH_MULTIPLIER"] = str(self.prefetch)
        return env

    def preload_argv(self, count: int) -> list[str]:
        return [sys.executable, "-m", "bench.preload", "conveyor", str(count)]


class Payments(Conveyor):
    """Payments end to end: ``N`` payments created by the payments service (each row and
    its outbox message in one transaction, the task published on commit), processed by
    two of the Procfile's workers of two processes each, on SQLite or PostgreSQL. Each
    charge takes the simulated gateway no time (``GATEWAY_LATENCY_MS=0``)."""

    def __init__(self, database: str):
        self.database = database
        self.name = "payments-%s" % database
        #: On PostgreSQL, a database of its own on POSTGRES_ADMIN_URL's server.
        self.scratch = None
        if database == "postgres":
            admin = os.environ.get(
                "POSTGRES_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres"
            )
            self.scratch = Database("postgres", Path(), postgres_url=admin)

    def environment(self, *, broker_url: str, redis_url: str, directory: Path) -> dict[str, str]:
        env = super().environment(broker_url=broker_url, redis_url=redis_url, directory=directory)
        env["GATEWAY_LATENCY_MS"] = "0"
        if self.scratch:
            env["DATABASE_URL"] = self.scratch.url
            # production's (development's settings keep none, for runserver's sake)
            env["CONN_MAX_AGE"] = "60"
        return env

    def prepare(self, env: dict[str, str]) -> None:
        if self.scratch:
            self.scratch.create()
        super().prepare(env)

    def finish(self, env: dict[str, str]) -> None:
        if self.scratch:
            self.scratch.drop()

    def preload_argv(self, count: int) -> list[str]:
        return [sys.executable, "-m", "bench.preload", "payments", str(count)]

    def worker_argv(self) -> list[str]:
        one = shlex.join(super().worker_argv())
        return [
            "bash",
            "-c",
            "%s --hostname=a@%%h & %s --hostname=b@%%h & wait" % (one, one),
        ]


SYSTEMS = {
    system.name: system
    for system in (
        Floor(),
        BareCelery(),
        Cookiecutter(),
        Dramatiq(),
        Conveyor(),
        ConveyorResults(),
        ConveyorVariant(queue_type="classic"),
        ConveyorVariant(prefetch=4),
        ConveyorVariant(queue_type="classic", prefetch=4),
        Payments("sqlite"),
        Payments("postgres"),
    )
}
