"""Run a Celery worker so that stopping it never kills a running task behind its back.

Usage (the Procfile and docker-compose run the worker this way)::

    python -m apps.delivery.supervise -- celery -A config.celery worker -l info

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
   start: late acknowledgement keeps them, idempotency keeps the rerun harmless.

The supervisor exits with the worker's exit status. If the supervisor itself is killed
(honcho's SIGKILL), the worker gets SIGQUIT from the kernel (Linux): it hands its running
tasks back and exits, so nothing is left running.
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
PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM):
    """A ``preexec_fn``: the child gets ``signum`` when its parent dies (Linux only)."""

    def request():
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signum)

    return request


class Supervisor:
    def __init__(self, command: list[str], *, grace: float):
        self.command = command
        self.grace = grace
        self.child: subprocess.Popen | None = None
        self.stopping = False
        self.timer: threading.Timer | None = None

    def run(self) -> int:
        self.child = subprocess.Popen(
            self.command, start_new_session=True, preexec_fn=die_with_parent(signal.SIGQUIT)
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.on_stop_signal)
        while True:
            try:
                returncode = self.child.wait()
                break
            except InterruptedError:  # pragma: no cover (PEP 475 retries for us)
                continue
        if self.timer is not None:
            self.timer.cancel()
        return returncode if returncode >= 0 else 128 - returncode

    def on_stop_signal(self, signum, frame) -> None:
        if not self.stopping:
            self.stopping = True
            self._send(signal.SIGTERM)
            self.timer = threading.Timer(self.grace, self._send, args=(signal.SIGQUIT,))
            self.timer.daemon = True
            self.timer.start()
        else:
            self._send(signal.SIGQUIT)

    def _send(self, signum: int) -> None:
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                self.child.send_signal(signum)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        sys.stderr.write("usage: python -m apps.delivery.supervise -- COMMAND [ARGS...]\n")
        return 2
    raw = os.environ.get(GRACE_VARIABLE, "") or str(DEFAULT_GRACE_SECONDS)
    try:
        grace = float(raw)
    except ValueError:
        sys.stderr.write(
            "Configuration error: %s=%r is not a number of seconds.\n" % (GRACE_VARIABLE, raw)
        )
        return 2
    return Supervisor(argv, grace=grace).run()


if __name__ == "__main__":
    sys.exit(main())
