"""One drain: fill a system's queue, start its worker, time it from outside, stop it.

The clock starts at the first poll that sees fewer than N messages waiting and stops at
the first that sees none waiting and none unacknowledged (on RabbitMQ: none ready).
Polls are :data:`POLL_SECONDS` apart, so each end is late by at most that and a round
trip to the broker.

CPU is read from ``/proc/<pid>/stat`` for every process of a tree: user and system
time, plus that of the children it has reaped (``cutime``, ``cstime``), so a process
that exits during the drain still counts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.processes import BASE_DIR, descendants

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: How often the broker is asked how many messages wait.
POLL_SECONDS = 0.005
#: Longest a worker may take to take its first message.
BOOT_TIMEOUT_SECONDS = 90
#: Longest the pre-loaded messages may take to show up in the queue.
PRELOAD_TIMEOUT_SECONDS = 300
#: Longest a worker may take to stop after SIGTERM before its tree gets SIGKILL.
STOP_GRACE_SECONDS = 10


class Failed(Exception):
    """The system did not do what the run needs: the run is recorded as failed."""


@dataclass
class Measurement:
    """One drain of one system on one broker; its figures are None if it failed."""

    system: str
    broker: str
    repetition: int
    tasks: int
    #: From the first message taken to the last one done.
    seconds: float | None = None
    #: From the worker's start to its first message (not in ``seconds``).
    boot_seconds: float | None = None
    worker_cpu_seconds: float | None = None
    broker_cpu_seconds: float | None = None
    #: Why the run failed; empty if it did not.
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def tasks_per_second(self) -> float | None:
        return self.tasks / self.seconds if self.ok else None

    @property
    def worker_cpu_ms_per_task(self) -> float | None:
        return 1000 * self.worker_cpu_seconds / self.tasks if self.ok else None

    @property
    def broker_cpu_ms_per_task(self) -> float | None:
        return 1000 * self.broker_cpu_seconds / self.tasks if self.ok else None

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "tasks_per_second": self.tasks_per_second,
            "worker_cpu_ms_per_task": self.worker_cpu_ms_per_task,
            "broker_cpu_ms_per_task": self.broker_cpu_ms_per_task,
        }


def cpu_seconds(pid: int) -> float:
    """CPU seconds spent by ``pid`` and every process below it."""
    ticks = 0
    for each in descendants(pid):
        try:
            fields = Path("/proc/%d/stat" % each).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(value) for value in fields[11:15])
    return ticks / CLOCK_TICKS


def stop_tree(process: subprocess.Popen) -> None:
    """SIGTERM the process, then SIGKILL it and everything it started, and wait until
    all of them are gone."""
    tree = descendants(process.pid)
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE_SECONDS)
    tree += descendants(process.pid) if process.poll() is None else []
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_worker(argv: list[str], *, env: dict, log: Path) -> subprocess.Popen:
    """Start a worker in a session of its own, its output going to ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=BASE_DIR,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def drain(system, broker, *, tasks: int, repetition: int, env: dict, log: Path, timeout: float):
    """Run ``system`` once on ``broker``; a :class:`Measurement`, failed or not."""
    measurement = Measurement(system.name, broker.kind, repetition, tasks)
    try:
        _preload(system, broker, tasks, env)
        worker = start_worker(system.worker_argv(), env=env, log=log)
        try:
            _time(system, broker, worker, measurement, timeout)
        finally:
            stop_tree(worker)
    except Failed as exc:
        tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
        measurement.error = "\n".join([str(exc), *tail])
    return measurement


def _preload(system, broker, tasks: int, env: dict) -> None:
    try:
        run = subprocess.run(
            system.preload_argv(tasks),
            env=env,
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=PRELOAD_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise Failed("pre-load took more than %d s" % PRELOAD_TIMEOUT_SECONDS) from None
    if run.returncode:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise Failed("pre-load exited with %d: %s\n%s" % (run.returncode, last, run.stderr[-2000:]))
    deadline = time.monotonic() + PRELOAD_TIMEOUT_SECONDS
    while (waiting := broker.depth(system)) != tasks:
        if time.monotonic() > deadline:
            raise Failed("after pre-load the queue holds %d of %d messages" % (waiting, tasks))
        time.sleep(0.1)


def _time(system, broker, worker, measurement: Measurement, timeout: float) -> None:
    launched = time.monotonic()
    while broker.depth(system) >= measurement.tasks:
        _check(worker, launched, BOOT_TIMEOUT_SECONDS, "take a first message")
        time.sleep(POLL_SECONDS)
    started = time.monotonic()
    worker_cpu, broker_cpu = cpu_seconds(worker.pid), cpu_seconds(broker.pid)
    while True:
        waiting = broker.depth(system)
        held = 0 if waiting else broker.in_flight(system)
        if not waiting and not held:
            break
        left = "%d waiting" % waiting if waiting else "%d unacknowledged" % held
        what = "drain the queue (%s)" % left
        _check(worker, started, timeout, what)
        time.sleep(POLL_SECONDS)
    finished = time.monotonic()
    measurement.worker_cpu_seconds = cpu_seconds(worker.pid) - worker_cpu
    measurement.broker_cpu_seconds = cpu_seconds(broker.pid) - broker_cpu
    measurement.seconds = finished - started
    measurement.boot_seconds = started - launched


def _check(worker: subprocess.Popen, since: float, timeout: float, what: str) -> None:
    if worker.poll() is not None:
        raise Failed("the worker exited with %d before it could %s" % (worker.returncode, what))
    if time.monotonic() - since > timeout:
        raise Failed("the worker did not %s within %g s" % (what, timeout))
