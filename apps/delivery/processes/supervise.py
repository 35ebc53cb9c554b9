"""Run a Celery worker so that stopping it never kills a running task behind its back.

Usage (the Procfile and docker-compose run the worker this way)::

    python -m apps.delivery.processes.supervise -- celery -A config.celery worker -l info

Process managers stop a worker badly in two ways. honcho sends SIGTERM to the worker's
whole process *group*, so the prefork pool processes die with their tasks while the
main process prints "Warm shutdown"; then, 5 seconds later, it sends SIGKILL. Docker
sends SIGTERM to the main process only, then SIGKILL after the stop grace period.

This supervisor runs the worker in a process group of its own, so only the signals it
forwards reach it:

1. SIGTERM or SIGINT: the worker gets SIGTERM, Celery's *warm* shutdown. It stops taking
   messages and lets its running tasks finish; what it had reserved goes back to the
   broker.
2. If the worker still runs ``WORKER_STOP_GRACE_SECONDS`` later (default 4, just inside
   honcho's 5 seconds; docker-compose sets it below its stop grace period), or on a
   second SIGTERM/SIGINT: SIGQUIT, Celery's *cold* shutdown. It cancels the running tasks,
   whose messages (acknowledged late) go back to the broker, to run again on the next
   start: late acknowledgement keeps them, idempotency keeps the rerun harmless. On
   Redis the worker makes them due at once
   (:mod:`apps.delivery.celery_overrides.consumer`), not after the visibility timeout.
3. A cold shutdown waits for the cancelled tasks' pool processes to exit, and one that
   does not die on SIGTERM (a task that catches it, or is stuck in the kernel) keeps the
   worker waiting for ever. If the worker still runs ``WORKER_COLD_SHUTDOWN_SECONDS``
   after the SIGQUIT (default 10), it and its pool processes get SIGKILL. Nothing is
   lost: its unacknowledged messages stay at the broker (RabbitMQ hands them out again
   at once; on Redis they come back after the visibility timeout, or when
   ``make dev`` next starts Redis).

The supervisor exits with the worker's exit status. If the supervisor itself is killed
(honcho's SIGKILL 5 seconds after Ctrl-C), the kernel kills the worker too (Linux), and
Celery's pool processes die with the worker: nothing is left running, and what they
ran comes back as in 3.
It imports nothing from Django: it starts in milliseconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading

GRACE_VARIABLE = "WORKER_STOP_GRACE_SECONDS"
DEFAULT_GRACE_SECONDS = 4.0
COLD_VARIABLE = "WORKER_COLD_SHUTDOWN_SECONDS"
DEFAULT_COLD_SECONDS = 10.0
PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM):
    """A ``preexec_fn``: the child gets ``signum`` when its parent dies (Linux only)."""

    def request():
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signum)

    return request


class Supervisor:
    def __init__(self, command: list[str], *, grace: float, cold: float = DEFAULT_COLD_SECONDS):
        self.command = command
        self.grace = grace
        self.cold = cold
        self.child: subprocess.Popen | None = None
        self.stopping = False
        self.timers: list[threading.Timer] = []
        self.lock = threading.Lock()
        self.cold_started = False

    def run(self) -> int:
        # Its own session (and process group, with its pool processes): only what the
        # supervisor sends reaches it. It dies with the supervisor.
        self.child = subprocess.Popen(
            self.command, start_new_session=True, preexec_fn=die_with_parent(signal.SIGKILL)
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.on_stop_signal)
        while True:
            try:
                returncode = self.child.wait()
                break
            except InterruptedError:  # pragma: no cover (PEP 475 retries for us)
                continue
        for timer in self.timers:
            timer.cancel()
        return returncode if returncode >= 0 else 128 - returncode

    def on_stop_signal(self, signum, frame) -> None:
        if not self.stopping:
            self.stopping = True
            self._send(signal.SIGTERM)
            self._later(self.grace, self.cold_shutdown)
        else:
            self.cold_shutdown()

    def cold_shutdown(self) -> None:
        with self.lock:
            if self.cold_started:
                return
            self.cold_started = True
        self._send(signal.SIGQUIT)
        self._later(self.cold, self.kill)

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes (its process group)."""
        if self.child is None or self.child.poll() is not None:
            return
        sys.stderr.write(
            "supervise: the worker (pid %d) still runs %g s after its cold shutdown began: "
            "killing it and its pool processes; its unacknowledged tasks stay at the broker.\n"
            % (self.child.pid, self.cold)
        )
        sys.stderr.flush()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.child.pid, signal.SIGKILL)

    def _later(self, seconds: float, action) -> None:
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()

    def _send(self, signum: int) -> None:
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                self.child.send_signal(signum)


def seconds_from_environment(name: str, default: float) -> float:
    raw = os.environ.get(name, "") or str(default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ValueError(
            "Configuration error: %s=%r is not a number of seconds (0 or more)." % (name, raw)
        )
    return value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        sys.stderr.write(
            "usage: python -m apps.delivery.processes.supervise -- COMMAND [ARGS...]\n"
        )
        return 2
    try:
        grace = seconds_from_environment(GRACE_VARIABLE, DEFAULT_GRACE_SECONDS)
        cold = seconds_from_environment(COLD_VARIABLE, DEFAULT_COLD_SECONDS)
    except ValueError as exc:
        sys.stderr.write("%s\n" % exc)
        return 2
    return Supervisor(argv, grace=grace, cold=cold).run()


if __name__ == "__main__":
    sys.exit(main())
