"""A throwaway Conveyor stack, driven only through its public surfaces.

Brokers on free loopback ports (Redis with its append-only file, a RabbitMQ node), a
scratch database (a SQLite file, or a PostgreSQL database created for the run), the
web process serving the HTTP API, workers run with the Procfile's worker command, and
beat with the Procfile's. Faults are what an operator's bad day brings: SIGKILL of a
worker's whole process tree or of its pool processes, kill -9 of the broker, the broker
stopped, warm and cold shutdowns. The database is read only to count at the end
(:mod:`faults.ledger`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.processes import BASE_DIR, Process, children, descendants, procfile
from tests.servers import RabbitMQServer, RedisServer, free_port

from .rabbitmq_cluster import RabbitMQCluster

#: What every process of the stack runs with, beyond the broker and the database.
#: A killed worker's Redis messages come back after the visibility timeout: 20 s instead
#: of an hour, so that a drain takes seconds (the timeout changes when, not whether).
STACK_ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "config.settings.dev",
    "LOG_FORMAT": "json",
    "PYTHONUNBUFFERED": "1",
    "REDIS_VISIBILITY_TIMEOUT_SECONDS": "20",
    "TASK_TIME_LIMIT_SECONDS": "12",
    "TASK_SOFT_TIME_LIMIT_SECONDS": "10",
    "TASK_RETRY_BACKOFF_SECONDS": "1",
    "TASK_RETRY_BACKOFF_MAX_SECONDS": "2",
    "OUTBOX_RELAY_INTERVAL_SECONDS": "0.5",
}


#: The Redis brokers by the ``appendfsync`` of their append-only file: "redis" writes it
#: to disk every second (the default), "redis-always" before it answers each write.
BROKERS_APPENDFSYNC = {"redis": "everysec", "redis-always": "always"}


def sigkill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Database:
    """A scratch database: a SQLite file, or a PostgreSQL database made for the run."""

    def __init__(self, kind: str, directory: Path, *, postgres_url: str):
        self.kind = kind
        if kind == "sqlite":
            self.url = "sqlite:///%s" % (directory / "faults.sqlite3")
        else:
            self.name = "conveyor_faults_%s" % uuid.uuid4().hex[:10]
            self.admin_url = postgres_url
            self.url = postgres_url.rsplit("/", 1)[0] + "/" + self.name

    def create(self) -> None:
        if self.kind == "postgres":
            self._admin("CREATE DATABASE %s" % self.name)

    def drop(self) -> None:
        if self.kind == "postgres":
            self._admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)

    def query(self, sql: str) -> list[tuple]:
        if self.kind == "sqlite":
            import sqlite3

            with sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30) as db:
                return db.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.url.replace("postgres://", "postgresql://")) as db:
            return db.execute(sql).fetchall()

    def _admin(self, sql: str) -> None:
        import psycopg

        admin = self.admin_url.replace("postgres://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(sql)


class Stack:
    """Brokers, database, web, workers and beat of one scenario run."""

    def __init__(self, directory: Path, *, broker: str, db: str, postgres_url: str, **extra_env):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.broker_kind = broker
        if broker in BROKERS_APPENDFSYNC:
            self.broker = RedisServer(directory / "redis", appendfsync=BROKERS_APPENDFSYNC[broker])
        elif broker == "rabbitmq-cluster":
            self.broker = RabbitMQCluster(directory / "cluster")
        else:
            self.broker = RabbitMQServer(directory / "rabbitmq")
        self.database = Database(db, directory, postgres_url=postgres_url)
        self.web_port = free_port()
        self.extra_env = extra_env
        self.processes: list[Process] = []
        self.workers: list[Process] = []
        self.web: Process | None = None
        #: The answers to posts that the API did not acknowledge with 202.
        self.refused: list[dict] = []

    # -- life --------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE"))}
        env.update(STACK_ENVIRONMENT)
        env.update(
            CELERY_BROKER_URL=self.broker.broker_url,
            DATABASE_URL=self.database.url,
            RUN_DIR=str(self.directory / "run"),
            WEB_PORT=str(self.web_port),
            PATH="%s:%s" % (Path(sys.executable).parent, os.environ.get("PATH", "")),
        )
        env.update({k: str(v) for k, v in self.extra_env.items()})
        return env

    def start(self, *, workers: int = 2, beat: bool = True) -> Stack:
        self.broker.start()
        self.database.create()
        self.web = self._run("web", procfile()["web"], ready="Quit the server with")
        if workers:
            self.start_workers(workers)
        if beat:
            self._run("beat", procfile()["beat"], ready="beat: Starting")
        return self

    def stop(self) -> None:
        for process in self.processes:
            if process.process is not None and process.process.poll() is None:
                sigkill(descendants(process.process.pid))
                process.process.wait(timeout=30)
        self.broker.stop()
        self.database.drop()
        self.write_logs()

    def write_logs(self) -> None:
        """Each process's output to ``logs/<name>.log`` in the stack's directory."""
        logs = self.directory / "logs"
        logs.mkdir(exist_ok=True)
        for process in self.processes:
            (logs / ("%s.log" % process.name)).write_text("\n".join(process.lines) + "\n")

    def start_worker(self, **env) -> Process:
        (worker,) = self.start_workers(1, **env)
        return worker

    def start_workers(self, count: int, *, ready: bool = True, **env) -> list[Process]:
        """Start ``count`` workers side by side; return once every one is ``ready``."""
        workers = []
        for _ in range(count):
            name = "worker%d" % (len(self.processes) + 1)
            command = "%s --hostname=%s@%%h" % (procfile()["worker"], name)
            workers.append(self._start(name, command, **env))
        for worker in workers if ready else ():
            worker.wait_for(r"\bready\b", timeout=90)
        self.workers += workers
        return workers

    def start_web(self, **env) -> int:
        """Another web process, on a port of its own; its port."""
        port = free_port()
        name = "web%d" % (len(self.processes) + 1)
        self._run(name, procfile()["web"], ready="Quit the server with", WEB_PORT=str(port), **env)
        return port

    def _run(self, name: str, command: str, *, ready: str, **env) -> Process:
        process = self._start(name, command, **env)
        process.wait_for(ready, timeout=90)
        return process

    def _start(self, name: str, command: str, **env) -> Process:
        # One command replaces the shell, so that a signal to the process reaches it
        # (the web's "migrate && runserver" keeps its shell).
        script = command if "&&" in command else "exec %s" % command
        process = Process(["bash", "-c", script], {**self.env, **env}, name=name)
        process.start()
        self.processes.append(process)
        return process

    # -- faults --------------------------------------------------------------------------

    def kill_worker(self, worker: Process) -> None:
        """SIGKILL a worker's whole process tree at once: supervisor, Celery, pool."""
        sigkill(descendants(worker.process.pid))
        worker.process.wait(timeout=30)
        self.workers.remove(worker)

    def pool_processes(self, worker: Process) -> list[int]:
        """The worker's prefork pool processes: the children of Celery's main process,
        itself the supervisor's child."""
        tree = children()
        return [pool for main in tree.get(worker.process.pid, []) for pool in tree.get(main, [])]

    def crash_broker(self) -> None:
        self.broker.crash()
        self.broker.start()

    # -- the public surfaces -------------------------------------------------------------

    def post_payment(
        self, *, source: str = "tok_ok", timeout: float = 30, port: int | None = None
    ) -> dict:
        """``POST /api/payments/`` (to the web on ``port``, the first by default): the
        answer with the seconds it took, or ``{"error": ...}`` saying what went wrong."""
        request = urllib.request.Request(
            "http://127.0.0.1:%d/api/payments/" % (port or self.web_port),
            data=json.dumps({"amount": "10.00", "currency": "EUR", "source": source}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            body = {"error": "HTTP %d: %s" % (exc.code, exc.read()[:300].decode(errors="replace"))}
        except (OSError, ValueError) as exc:
            body = {"error": "%s: %s" % (type(exc).__name__, exc)}
        body["seconds"] = round(time.monotonic() - started, 3)
        return body

    def manage(self, *args: str) -> str:
        """``python manage.py ...``; its output."""
        return self._command("manage.py", *args)

    def celery(self, *args: str) -> str:
        """``celery -A config.celery ...``; its output."""
        return self._command("-m", "celery", "-A", "config.celery", *args)

    def _command(self, *argv: str) -> str:
        run = subprocess.run(
            [sys.executable, *argv],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return run.stdout

    def dead_letters(self) -> list[dict]:
        return json.loads(self.manage("deadletters", "list", "--format", "json") or "[]")
