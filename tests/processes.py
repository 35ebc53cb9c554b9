"""Real Celery worker and beat processes started by tests, with their output at hand."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def procfile() -> dict[str, str]:
    """The Procfile's processes: ``{"web": "python manage.py ...", "worker": ...}``."""
    commands = {}
    for line in (BASE_DIR / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = command.strip()
    return commands


def children() -> dict[int, list[int]]:
    """Every process's children, by parent pid (Linux: read from /proc)."""
    found: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found.setdefault(int(fields[1]), []).append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    tree, found, todo = children(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


class Process:
    """A child process whose combined output is collected line by line.

    ``wait_for(pattern)`` blocks until a line matching ``pattern`` has been written,
    so tests await events instead of sleeping.
    """

    def __init__(self, argv: list[str], env: dict[str, str], *, name: str):
        self.argv = argv
        self.env = env
        self.name = name
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._eof = False
        self.process: subprocess.Popen | None = None

    def start(self) -> Process:
        self.lines.clear()
        self._eof = False
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        return self

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def mark(self) -> int:
        """Return a position in the output; ``wait_for(..., since=mark)`` looks after it."""
        with self._changed:
            return len(self.lines)

    def matching(self, pattern: str, *, since: int = 0) -> list[str]:
        regex = re.compile(pattern)
        with self._changed:
            return [line for line in self.lines[since:] if regex.search(line)]

    def wait_for(
        self, pattern: str, *, timeout: float = 30, since: int = 0, count: int = 1
    ) -> list[str]:
        """Wait until ``count`` lines after ``since`` match ``pattern``; return them."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines[since:] if regex.search(line)]
                if len(found) >= count:
                    return found
                if self._eof:
                    raise AssertionError(
                        "%s exited (%s) before printing %r:\n%s"
                        % (self.name, self.process.returncode, pattern, "\n".join(self.lines[-60:]))
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        "%s printed %d of %d lines matching %r within %ss:\n%s"
                        % (
                            self.name,
                            len(found),
                            count,
                            pattern,
                            timeout,
                            "\n".join(self.lines[-60:]),
                        )
                    )
                self._changed.wait(min(remaining, 0.5))

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the main process only."""
        self.process.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        """Wait for the process to exit and for all of its output to be read."""
        returncode = self.process.wait(timeout=timeout)
        with self._changed:
            self._changed.wait_for(lambda: self._eof, timeout=timeout)
        return returncode

    def kill(self) -> None:
        """SIGKILL the process and everything it started."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM the main process, wait for it, and SIGKILL what is left."""
        if self.process is None or self.process.poll() is not None:
            self.kill()
            return self.process.returncode if self.process else 0
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.kill()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def celery_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "config.celery", *args]


class Worker(Process):
    """``celery worker`` as its own process, as deployed; ``supervised``: behind
    ``apps.delivery.processes.supervise``, as the Procfile and docker-compose run it."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        name: str,
        concurrency: int = 2,
        args: tuple = (),
        supervised: bool = False,
    ):
        self.hostname = "%s@%%h" % name
        self.supervised = supervised
        supervisor = [sys.executable, "-m", "apps.delivery.processes.supervise", "--"]
        argv = supervisor if supervised else []
        argv += celery_argv(
            "worker",
            "--loglevel=INFO",
            "--hostname=%s" % self.hostname,
            "--concurrency=%d" % concurrency,
            "--without-gossip",
            "--without-mingle",
            *args,
        )
        super().__init__(argv, env, name="worker %s" % name)

    def start(self, *, ready: bool = True) -> Worker:
        super().start()
        if ready:
            self.wait_for(r"\bready\b", timeout=60)
        return self


class Beat(Process):
    """``celery beat`` as its own process."""

    def __init__(self, env: dict[str, str], *, name: str, schedule: Path, args: tuple = ()):
        # --quiet (before the command): no banner, as the Procfile runs it.
        argv = celery_argv("--quiet", "beat", "--loglevel=INFO", "--schedule=%s" % schedule, *args)
        super().__init__(argv, env, name="beat %s" % name)


class Web(Process):
    """``manage.py runserver`` on a free port, as its own process."""

    def __init__(self, env: dict[str, str], *, port: int):
        self.port = port
        argv = [sys.executable, "manage.py", "runserver", "127.0.0.1:%d" % port, "--noreload"]
        super().__init__(argv, env, name="web")

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def start(self) -> Web:
        super().start()
        self.wait_for("Quit the server with", timeout=60)
        return self
