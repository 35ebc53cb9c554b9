"""How long each health check takes, as a container runtime would run it.

    python -m tests.benchmarks.health_checks      (or: make bench)

Prints the median and the slowest of 10 runs of each command. The web check needs
the broker and database of the current settings (``make dev``'s, by default); it starts
its own ``runserver`` on a free port. Figures, not a pass/fail test: timings depend on
the machine.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from apps.delivery.processes.health import heartbeat_path, touch
from tests.processes import BASE_DIR, Web
from tests.servers import free_port

RUNS = 10


def timed(command: list[str], env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=BASE_DIR, check=True, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
    return times


def report(name: str, times: list[float]) -> None:
    print("%-28s median %6.1f ms   slowest %6.1f ms" % (name, statistics.median(times), max(times)))


def main() -> None:
    check = [sys.executable, "-m", "apps.delivery.processes.health"]
    with tempfile.TemporaryDirectory() as run_dir:
        env = {**os.environ, "RUN_DIR": run_dir}
        for role, name in (("worker", "bench@host"), ("beat", "")):
            touch(heartbeat_path(role, name, run_dir=run_dir))
            report("health %s (heartbeat)" % role, timed([*check, role], env))
        web = Web({**env, "DJANGO_SETTINGS_MODULE": "config.settings.dev"}, port=free_port())
        web.start()
        try:
            report(
                "health web (/healthz)", timed([*check, "web", "--url", web.url + "/healthz"], env)
            )
        finally:
            web.stop()
    print("(%d runs each; %s)" % (RUNS, Path(sys.executable).name))


if __name__ == "__main__":
    main()
