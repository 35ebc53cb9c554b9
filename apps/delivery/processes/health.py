"""Health checks, one command each, fast enough for a container health check.

    python -m apps.delivery.processes.health web      # GET /healthz: database and broker
    python -m apps.delivery.processes.health worker   # the worker's heartbeat is fresh
    python -m apps.delivery.processes.health beat     # beat's scheduler heartbeat is fresh

Each prints one JSON line and exits 0 when healthy, 1 otherwise. A worker touches its
heartbeat file every few seconds while it is connected to the broker and consuming
(:class:`apps.delivery.celery_overrides.bootsteps.WorkerHeartbeat`); beat touches its file on every
scheduler tick. The files live in ``RUN_DIR/heartbeats``.

This module imports nothing from Django: a check starts in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[3]
#: How often a worker touches its heartbeat; beat ticks at least this often too.
HEARTBEAT_INTERVAL_SECONDS = 5
#: A heartbeat older than this means the process is stuck or disconnected.
DEFAULT_MAX_AGE_SECONDS = 30


def run_directory(run_dir: str | os.PathLike | None = None) -> Path:
    """``run_dir``, else ``RUN_DIR`` from the environment, else the project's ``.run``
    (without ``.env``, which only the settings read)."""
    return Path(run_dir or os.environ.get("RUN_DIR") or BASE_DIR / ".run")


def heartbeat_dir(run_dir: str | os.PathLike | None = None) -> Path:
    return run_directory(run_dir) / "heartbeats"


def heartbeat_path(role: str, name: str = "", *, run_dir=None) -> Path:
    """The heartbeat file of a worker (named by its node name) or of beat."""
    return heartbeat_dir(run_dir) / ("%s-%s" % (role, name) if name else role)


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def check_heartbeat(role: str, *, name: str = "", max_age: float) -> tuple[bool, str]:
    """Is the newest heartbeat of ``role`` (or of node ``name``) younger than ``max_age``?"""
    if name:
        files = [heartbeat_path(role, name)]
    else:
        directory = heartbeat_dir()
        files = list(directory.glob("%s-*" % role)) + list(directory.glob(role))
    ages = [(time.time() - f.stat().st_mtime, f) for f in files if f.exists()]
    if not ages:
        return False, "no %s heartbeat in %s" % (role, heartbeat_dir())
    age, newest = min(ages)
    if age > max_age:
        return False, "%s heartbeat is %.0f s old (limit %.0f s)" % (newest.name, age, max_age)
    return True, "%s heartbeat %.1f s old" % (newest.name, age)


def check_web(url: str, *, timeout: float) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return response.status == 200, response.read().decode()
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode() or str(exc)
    except OSError as exc:
        return False, "%s: %s" % (url, exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Conveyor health checks.")
    parser.add_argument("check", choices=["web", "worker", "beat"])
    parser.add_argument("--url", help="web: the health URL (default: local /healthz)")
    parser.add_argument("--node", default="", help="worker: its node name (default: newest)")
    parser.add_argument("--max-age", type=float, default=DEFAULT_MAX_AGE_SECONDS)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args(argv)

    if args.check == "web":
        url = args.url or "http://127.0.0.1:%s/healthz" % os.environ.get("WEB_PORT", "8000")
        healthy, detail = check_web(url, timeout=args.timeout)
    else:
        healthy, detail = check_heartbeat(args.check, name=args.node, max_age=args.max_age)
    sys.stdout.write(json.dumps({"check": args.check, "healthy": healthy, "detail": detail}) + "\n")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
