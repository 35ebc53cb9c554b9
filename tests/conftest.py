"""Fixtures: throwaway brokers, the test database shared with worker processes, and
real ``celery worker`` / ``celery beat`` processes."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import kombu.pools
import pytest
from django.conf import settings as django_settings
from django.db import connection

from apps.payments.models import Payment
from config import celery_app
from config.environment import broker_transport, default_result_backend
from tests.processes import Beat, Process, Web, Worker
from tests.servers import RabbitMQServer, RedisServer, free_port

#: Fixtures that start a broker (and the tests' worker, beat and web processes need one):
#: every test that uses one, directly or through another fixture, is marked ``broker``,
#: so that ``pytest -m "not broker"`` is the quick loop.
BROKER_FIXTURES = {
    "redis_server",
    "rabbitmq_server",
    "broker",
    "own_broker",
    "stack",
    "stack_with_its_own_brokers",
    "stack_on_a_running_redis",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, for fixtures that report a failure."""
    report = yield
    setattr(item, "report_%s" % report.when, report)
    return report


def report_if_failed(request, processes) -> None:
    """After a failed test, print the last lines of the processes it started: shown
    under the failure, they say what a worker, beat or web process was doing."""
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    for process in processes:
        print("\n----- last lines of %s -----\n%s" % (process.name, "\n".join(process.lines[-60:])))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory):
    server = RabbitMQServer(tmp_path_factory.mktemp("rabbitmq"))
    server.start()
    yield server
    server.stop()


@dataclass
class Broker:
    """The broker a test runs against: its kind, URLs and server."""

    kind: str
    url: str
    result_backend: str
    server: RedisServer | RabbitMQServer


def use_broker(broker_url: str, result_backend: str) -> None:
    """Point this process's Celery app (the one that sends tasks) at another broker."""
    _close_result_consumer()
    changes = {
        "broker_url": broker_url,
        "broker_transport": broker_transport(broker_url),
        "result_backend": result_backend,
    }
    # In the Django settings too: Celery 5.6 looks up their CELERY_-prefixed names
    # first, so a change to the app's configuration alone would go unseen there.
    for name, value in changes.items():
        setattr(django_settings, "CELERY_" + name.upper(), value)
    celery_app.conf.update(changes)
    celery_app._after_fork()  # drops the app's connection and producer pools
    # and kombu's, kept by broker URL: a producer of an earlier test on the same broker
    # would take the queues as declared, when the broker has been emptied since.
    kombu.pools.reset()
    celery_app._backend_cache = None
    celery_app._local = threading.local()
    # A reply queue of its own: rpc:// results must not reach the previous test's consumer.
    celery_app._local.oid = str(uuid.uuid4())


def _close_result_consumer() -> None:
    """Close the result consumer of the backend being left, so that no result of an
    earlier test reaches its server again. On Celery before 5.7, a garbage-collected
    AsyncResult unsubscribes from its Redis channel and, that server gone, retries 20
    times a second apart: whatever test runs at that moment stalls for 20 seconds."""
    consumer = getattr(celery_app._backend, "result_consumer", None)
    connection = getattr(consumer, "_connection", None)  # rpc://
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.close()
        consumer._connection = None
    pubsub = getattr(consumer, "_pubsub", None)  # redis://
    if pubsub is not None:
        consumer.subscribed_to.clear()
        consumer._pubsub = None
        with contextlib.suppress(Exception):
            pubsub.close()


@contextmanager
def broker_for(server):
    """Point this process's Celery app at ``server`` for the duration."""
    broker = Broker(
        kind=server.kind,
        url=server.broker_url,
        result_backend=default_result_backend(server.broker_url),
        server=server,
    )
    with pointed_at(broker.url, broker.result_backend):
        yield broker


@contextmanager
def pointed_at(broker_url: str, result_backend: str):
    """This process's Celery app on another broker for the duration of the block."""
    saved = (celery_app.conf.broker_url, celery_app.conf.result_backend)
    use_broker(broker_url, result_backend)
    try:
        yield
    finally:
        use_broker(*saved)


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request):
    """Each test that uses it runs once on Redis and once on RabbitMQ, empty at start."""
    server = request.getfixturevalue("%s_server" % request.param)
    server.reset()
    with broker_for(server) as broker:
        yield broker


@pytest.fixture(params=["redis", "rabbitmq"])
def own_broker(request):
    """A broker the test may stop and start, on each kind in turn: the session's server
    of that kind, empty at the start of the test, and running again after it (the tests
    of one session run one at a time)."""
    server = request.getfixturevalue("%s_server" % request.param)
    server.reset()
    try:
        with broker_for(server) as broker:
            yield broker
    finally:
        if not server.running:
            server.start()


def database_url() -> str:
    """The URL of the test database, for processes started by the tests."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return "sqlite:///%s" % settings["NAME"]
    return "postgres://%s:%s@%s:%s/%s" % (
        settings["USER"],
        settings["PASSWORD"],
        settings["HOST"] or "127.0.0.1",
        settings["PORT"] or 5432,
        settings["NAME"],
    )


@pytest.fixture
def process_env(broker, transactional_db, tmp_path):
    """Environment for worker and beat processes: this test's broker and database."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        CELERY_BROKER_URL=broker.url,
        CELERY_RESULT_BACKEND=broker.result_backend,
        DATABASE_URL=database_url(),
        RUN_DIR=str(tmp_path / "run"),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def start_worker(request, process_env):
    """Start ``celery worker`` processes: ``start_worker(concurrency=2, env={...})``."""
    workers = []

    def start(
        *,
        concurrency: int = 2,
        env: dict | None = None,
        args: tuple = (),
        ready=True,
        supervised=False,
    ):
        worker = Worker(
            {**process_env, **(env or {})},
            name="w%d-%s" % (len(workers) + 1, uuid.uuid4().hex[:6]),
            concurrency=concurrency,
            args=args,
            supervised=supervised,
        )
        workers.append(worker)
        return worker.start(ready=ready)

    yield start
    report_if_failed(request, workers)
    # The test is over: no need to wait for a warm shutdown (the next test starts with
    # empty queues and a flushed database). A supervised worker runs in a process group
    # of its own, out of reach of kill(): it is stopped.
    for worker in workers:
        if worker.supervised:
            worker.stop()
        else:
            worker.kill()


@pytest.fixture
def start_beat(request, process_env, tmp_path):
    """Start ``celery beat`` processes, each with its own schedule file."""
    beats = []

    def start(*, env: dict | None = None, args: tuple = ()):
        name = "b%d" % (len(beats) + 1)
        beat = Beat(
            {**process_env, **(env or {})},
            name=name,
            schedule=tmp_path / ("%s-schedule" % name),
            args=args,
        )
        beats.append(beat)
        return beat.start()

    yield start
    report_if_failed(request, beats)
    for beat in beats:
        beat.kill()


@pytest.fixture
def start_web(request, process_env):
    """Start ``manage.py runserver`` on a free port."""
    servers = []

    def start(*, env: dict | None = None):
        web = Web({**process_env, **(env or {})}, port=free_port())
        servers.append(web)
        return web.start()

    yield start
    report_if_failed(request, servers)
    for web in servers:
        web.stop()


@pytest.fixture
def start_gunicorn(request, process_env):
    """Start gunicorn as the container does (config/gunicorn.py, production settings) on a
    free port: ``start_gunicorn(env={...})``."""
    servers = []

    def start(*, env: dict | None = None):
        port = free_port()
        env = {
            **process_env,
            "DJANGO_SETTINGS_MODULE": "config.settings.prod",
            "SECRET_KEY": "x" * 50,
            "ALLOWED_HOSTS": "127.0.0.1",
            "WEB_PORT": str(port),
            "WEB_CONCURRENCY": "1",
            **(env or {}),
        }
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        process = Process(
            [gunicorn, "-c", "config/gunicorn.py", "config.wsgi"], env, name="gunicorn"
        )
        process.port = port
        process.url = "http://127.0.0.1:%d" % port
        servers.append(process)
        process.start()
        process.wait_for("Booting worker", timeout=30, count=int(env["WEB_CONCURRENCY"]))
        return process

    yield start
    report_if_failed(request, servers)
    for process in servers:
        process.stop()


@pytest.fixture
def make_payment():
    """Create a payment row directly (no task is enqueued)."""

    def make(**fields) -> Payment:
        fields = {"amount": Decimal("12.50"), "currency": "EUR", "source": "tok_ok", **fields}
        return Payment.objects.create(**fields)

    return make
