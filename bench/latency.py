"""Latency and enqueue cost, beside the drains (:mod:`bench.measure`).

- **enqueue -> start**: a worker of the system runs with the probe task
  (:mod:`bench.probe`); a sender publishes it open loop at a fixed rate for a few
  seconds; each task writes down how long after its intended send time it started.
  Percentiles of those delays; the run is invalid when the sender fell more than 2% of
  the run behind its schedule (the sender, not the system, was the bottleneck).
- **enqueue cost**: how long the caller waits, per call (:mod:`bench.enqueue`).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.processes import BASE_DIR

from .measure import Failed, start_worker, stop_tree

#: Longest the worker may take to run the first probe.
READY_TIMEOUT_SECONDS = 90
#: The sender may fall this share of the run behind before the run is invalid.
MAX_BEHIND = 0.02
#: Tasks per second one sender process is given at most: a Conveyor publish on
#: RabbitMQ waits for the broker's confirmation (about 1.6 ms), so one sender keeps
#: about 600/s, not bare Celery's half rate there.
SENDER_RATE = 400


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p99 and the maximum, in milliseconds."""
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * p99,
        "max_ms": 1000 * ordered[-1],
    }


def latency(system, broker, *, rate: float, seconds: float, env: dict, directory: Path) -> dict:
    """One open-loop run of ``system`` at ``rate`` tasks per second; its figures, or its
    ``error``."""
    result = {"system": system.name, "broker": broker.kind, "rate": rate, "seconds": seconds}
    probes = directory / ("probe-%s-%s-%g.txt" % (system.name, broker.kind, rate))
    env = {**env, "BENCH_PROBE_FILE": str(probes)}
    log = directory / ("latency-%s-%s-%g.log" % (system.name, broker.kind, rate))
    broker.reset(system)
    worker = start_worker([*system.worker_argv(), "--include", "bench.probe"], env=env, log=log)
    try:
        # warm: the worker has run a probe, its connections are made
        _send(system, env, rate=10, seconds=0.5)
        _wait_for_lines(probes, 5, worker, READY_TIMEOUT_SECONDS)
        probes.unlink()
        sent = _send(system, env, rate=rate, seconds=seconds)
        delays = _wait_for_lines(probes, sent["sent"], worker, 60 + seconds)
        result.update(
            percentiles(delays),
            sent=sent["sent"],
            behind_s=sent["behind"],
            senders=sent["senders"],
        )
        if sent["behind"] > MAX_BEHIND * seconds:
            result["error"] = "the sender fell %.2f s behind: invalid" % sent["behind"]
    except Failed as exc:
        tail = log.read_text(errors="replace").splitlines()[-10:]
        result["error"] = "\n".join([str(exc), *tail])
    finally:
        stop_tree(worker)
    return result


def senders_for(rate: float) -> int:
    """Sender processes for ``rate``: one keeps ``SENDER_RATE`` comfortably."""
    return max(1, math.ceil(rate / SENDER_RATE))


def _send(system, env: dict, *, rate: float, seconds: float) -> dict:
    """Send the probe open loop from :func:`senders_for` processes on one schedule, which
    starts once every one of them is connected."""
    senders = senders_for(rate)
    runs = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "bench.probe", system.name, str(rate), str(seconds)),
                *(str(senders), str(index)),
            ],
            env=env,
            cwd=BASE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(senders)
    ]
    try:
        for run in runs:
            if run.stdout.readline().strip() != "ready":
                run.wait(timeout=60)
                error = run.stderr.read()[-1500:]
                raise Failed("a sender exited with %d: %s" % (run.returncode, error))
        start = time.time() + 0.1
        answers = []
        for run in runs:
            run.stdin.write("%r\n" % start)
            run.stdin.flush()
        for run in runs:
            out, err = run.communicate(timeout=120 + seconds)
            if run.returncode:
                raise Failed("a sender exited with %d: %s" % (run.returncode, err[-1500:]))
            answers.append(json.loads(out))
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
    return {
        "sent": sum(a["sent"] for a in answers),
        "behind": max(a["behind"] for a in answers),
        "senders": senders,
    }


def _wait_for_lines(path: Path, count: int, worker, timeout: float) -> list[float]:
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().split() if path.exists() else []
        if len(lines) >= count:
            return [float(line) for line in lines]
        if worker.poll() is not None:
            raise Failed("the worker exited with %d" % worker.returncode)
        if time.monotonic() > deadline:
            raise Failed("%d of %d probes ran within %g s" % (len(lines), count, timeout))
        time.sleep(0.05)


def enqueue_cost(name: str, *, env: dict, count: int) -> dict:
    """Per-call times of one way of enqueueing (:mod:`bench.enqueue`)."""
    run = subprocess.run(
        [sys.executable, "-m", "bench.enqueue", name, str(count)],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if run.returncode:
        return {"name": name, "error": run.stderr.strip()[-1500:] or "exit %d" % run.returncode}
    return {"name": name, "calls": count, **percentiles(json.loads(run.stdout))}
