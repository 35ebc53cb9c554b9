"""A first run as the README tells it, in a network of its own: ``make dev`` on
non-default ports, the README's check command, then Ctrl-C, with decoys listening on the
brokers' default ports that count every connection they receive.

Run by tests/test_first_run.py inside a new network namespace (``unshare --net``), where
the default ports are free whatever runs on the machine; prints one JSON line with what
it saw. Usage::

    unshare --net [--map-root-user] python -m tests.first_run BROKER RUN_DIR
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PORTS = {"redis": 6379, "rabbitmq": 5672}
#: The ports this run uses instead.
PORTS = {"REDIS_PORT": 16379, "RABBITMQ_PORT": 15673, "WEB_PORT": 18000}


def loopback_up() -> None:
    """Bring up ``lo``, which a new network namespace has down."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, siocgifflags, request)[:18])[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH", b"lo", flags | iff_up))


class Decoy:
    """Listens on a port and counts the connections it accepts (closing each)."""

    def __init__(self, port: int):
        self.port, self.connections = port, 0
        self.sockets = []
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(16)
            self.sockets.append(listener)
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener) -> None:
        while True:
            connection, _ = listener.accept()
            self.connections += 1
            connection.close()


def readme_check_command() -> str:
    """The check command of the README's first screen, as written there."""
    text = (BASE_DIR / "README.md").read_text()
    match = re.search(r"^\$ (\.venv/bin/python manage\.py shell -c .+)$", text, re.MULTILINE)
    if match is None:
        raise SystemExit("README.md has no check command ($ .venv/bin/python manage.py shell ...)")
    return match.group(1)


def main() -> int:
    broker, run_dir = sys.argv[1], Path(sys.argv[2])
    loopback_up()
    decoys = {name: Decoy(port) for name, port in DEFAULT_PORTS.items()}
    env = {
        **os.environ,
        **{name: str(port) for name, port in PORTS.items()},
        "BROKER": broker,
        "RUN_DIR": str(run_dir),
        "DATABASE_URL": "sqlite:///%s" % (run_dir / "db.sqlite3"),
        "RABBITMQ_NODENAME": "conveyor-first-run@localhost",
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "PATH": "%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]),
    }
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DEV_BROKERS", "IN_NIX_SHELL"):
        env.pop(name, None)
    started = time.monotonic()
    # make dev as a user runs it, with this Python's environment (a virtualenv, or the
    # Nix shell's) as the one make puts first on PATH and installs nothing into
    make = subprocess.Popen(
        ["make", "--no-print-directory", "dev", "VENV=%s" % sys.prefix, "INSTALLED="],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(make.stdout), daemon=True)
    reader.start()
    outcome = {"broker": broker}
    try:
        deadline = time.monotonic() + 150
        while not any(re.search(r"worker\.1\s+\|.*\bready\b", line) for line in lines):
            if make.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the worker never became ready")
            time.sleep(0.2)
        # the README's check, in a shell of the user's own with the same ports
        command = shlex.split(readme_check_command())
        command[0] = sys.executable  # .venv/bin/python, or the Nix shell's python
        check = subprocess.run(
            command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
        )
        outcome.update(
            check_output=check.stdout.strip(),
            check_errors=check.stderr[-2000:],
            seconds_to_result=round(time.monotonic() - started, 1),
        )
    except Exception as exc:
        outcome["error"] = "%s: %s" % (type(exc).__name__, exc)
    finally:
        # Ctrl-C, as a terminal sends it: SIGINT to make's whole process group
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGINT)
        try:
            outcome["make_status"] = make.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            outcome["make_status"] = "still running 60 s after Ctrl-C"
        reader.join(timeout=10)  # to the end of the output
    outcome["decoy_connections"] = {name: decoy.connections for name, decoy in decoys.items()}
    outcome["output"] = lines
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
