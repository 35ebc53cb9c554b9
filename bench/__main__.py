"""``python -m bench``: each task system's drain throughput, latency and enqueue cost.

    python -m bench                         # quick: 1000 tasks, 1 repetition
    python -m bench --profile full          # 5000 tasks, 3 repetitions
    python -m bench --tasks 300 --repeat 1 --broker redis --system celery --system conveyor

Prints a table per broker: the median of the repetitions in tasks per second, their
spread, CPU milliseconds per task of the worker and of the broker, and each median as a
multiple of bare Celery's and of the broker's floor; then bare Celery's and Conveyor's
enqueue-to-start latency and enqueue cost (:mod:`bench.latency`). Writes every
measurement to ``--json`` (default ``RUN_DIR/bench.json``) and the drains to a chart
(``--png``, default beside the JSON). A system that does not drain in time is
reported as failed and the run goes on; the exit status is not zero only when the
benchmark itself breaks.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from .brokers import RabbitMQ, Redis
from .chart import chart
from .latency import enqueue_cost, latency
from .measure import POLL_SECONDS, Measurement, drain
from .systems import SYSTEMS

#: Tasks and repetitions of each profile's drains.
PROFILES = {"quick": (1000, 1), "full": (5000, 3)}
#: Seconds of each open-loop latency run, and calls timed for the enqueue cost.
LATENCY_SECONDS = {"quick": 4, "full": 20}
ENQUEUE_CALLS = {"quick": 300, "full": 2000}
#: The fixed rate of the first latency run (the second: half bare Celery's capacity).
LATENCY_RATE = 100
WORKLOADS = ("drain", "latency", "enqueue")
BROKERS = {"redis": Redis, "rabbitmq": RabbitMQ}
PACKAGES = ("celery", "kombu", "amqp", "redis", "dramatiq", "pika", "django")


def summary(measurements: list[Measurement]) -> dict:
    """Medians and spread of one system's runs on one broker."""
    done = [m for m in measurements if m.ok]
    rates = [m.tasks_per_second for m in done]
    return {
        "runs": len(measurements),
        "failed": len(measurements) - len(done),
        "tasks_per_second": statistics.median(rates) if done else None,
        "min": min(rates, default=None),
        "max": max(rates, default=None),
        "worker_cpu_ms_per_task": _median(m.worker_cpu_ms_per_task for m in done),
        "broker_cpu_ms_per_task": _median(m.broker_cpu_ms_per_task for m in done),
        "errors": [m.error.splitlines()[0] for m in measurements if not m.ok],
    }


def _median(values) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def summaries(measurements: list[Measurement]) -> dict[str, dict[str, dict]]:
    """:func:`summary` by broker and system, with the ratios to ``celery`` and ``floor``."""
    found = {}
    for m in measurements:
        found.setdefault(m.broker, {}).setdefault(m.system, []).append(m)
    result = {}
    for broker, by_system in found.items():
        rows = {name: summary(runs) for name, runs in by_system.items()}
        for row in rows.values():
            for reference in ("celery", "floor"):
                base = rows.get(reference, {}).get("tasks_per_second")
                rate = row["tasks_per_second"]
                row["vs_" + reference] = rate / base if rate and base else None
        result[broker] = rows
    return result


LINE = "%-16s  %8s  %13s  %18s  %18s  %9s  %8s"
HEADER = (
    "system",
    "tasks/s",
    "min-max",
    "worker CPU ms/task",
    "broker CPU ms/task",
    "vs celery",
    "vs floor",
)


def cell(value: float | None, form: str, missing: str = "-") -> str:
    return missing if value is None else form % value


def table(rows: dict[str, dict]) -> list[str]:
    """The table of one broker, then what failed."""
    lines = [LINE % HEADER]
    for name, row in rows.items():
        spread = "%.0f-%.0f" % (row["min"], row["max"]) if row["min"] is not None else "-"
        lines.append(
            LINE
            % (
                name,
                cell(row["tasks_per_second"], "%.0f", missing="failed"),
                spread,
                cell(row["worker_cpu_ms_per_task"], "%.3f"),
                cell(row["broker_cpu_ms_per_task"], "%.3f"),
                cell(row["vs_celery"], "%.2fx"),
                cell(row["vs_floor"], "%.2fx"),
            )
        )
    for name, row in rows.items():
        lines.extend("  %s failed: %s" % (name, error) for error in row["errors"])
    return lines


def progress(m: Measurement, repeat: int) -> str:
    head = "rep %d/%d  %-8s  %-16s" % (m.repetition, repeat, m.broker, m.system)
    if not m.ok:
        return "%s  FAILED: %s" % (head, m.error.replace("\n", "\n    "))
    return "%s  %7.0f tasks/s  %.3f worker CPU ms/task  (boot %.1f s)" % (
        head,
        m.tasks_per_second,
        m.worker_cpu_ms_per_task,
        m.boot_seconds,
    )


def run(directory: Path, kinds: list[str], systems: list, *, tasks, repeat, timeout, extra):
    """Every repetition of every system on every broker, then the latency and enqueue
    runs ``extra`` asks for (``{"latency": seconds, "enqueue": calls}``); the
    measurements, the other figures, and the versions of the packages and servers."""
    # Redis runs in every case: it holds cookiecutter's results on RabbitMQ too.
    brokers = {kind: BROKERS[kind](directory) for kind in dict.fromkeys(("redis", *kinds))}
    measurements, prepared, envs = [], [], {}
    try:
        for broker in brokers.values():
            broker.start()
        envs = {
            (system.name, kind): system.environment(
                broker_url=brokers[kind].url, redis_url=brokers["redis"].url, directory=directory
            )
            for system in systems
            for kind in kinds
        }
        for system in list(systems):
            try:
                system.prepare(envs[system.name, kinds[0]])
            except Exception as exc:  # a missing PostgreSQL, say: the others still run
                print("%s is not run: %s: %s" % (system.name, type(exc).__name__, exc))
                systems.remove(system)
            else:
                prepared.append(system)
        for repetition in range(1, repeat + 1):
            for kind in kinds:
                for system in systems:
                    for broker in brokers.values():
                        broker.reset(system)
                    measurement = drain(
                        system,
                        brokers[kind],
                        tasks=tasks,
                        repetition=repetition,
                        env=envs[system.name, kind],
                        log=directory / ("%s-%s-%d.log" % (system.name, kind, repetition)),
                        timeout=timeout,
                    )
                    measurements.append(measurement)
                    print(progress(measurement, repeat), flush=True)
        figures = others(directory, brokers, kinds, systems, envs, measurements, extra)
        versions = {package: version(package) for package in PACKAGES}
        versions.update({kind + "-server": broker.version for kind, broker in brokers.items()})
    finally:
        for system in prepared:
            system.finish(envs[system.name, kinds[0]])
        for broker in brokers.values():
            broker.stop()
    return measurements, figures, versions


def others(directory, brokers, kinds, systems, envs, measurements, extra) -> dict:
    """The latency runs of bare Celery and Conveyor (at LATENCY_RATE, and at half of bare
    Celery's drain rate where this run measured it), and the enqueue costs."""
    figures = {"latency": [], "enqueue": []}
    names = [s.name for s in systems if s.name in ("celery", "conveyor")]
    by_name = {s.name: s for s in systems}
    capacity = summaries(measurements)
    for kind in kinds:
        if "latency" in extra:
            half = (capacity.get(kind, {}).get("celery") or {}).get("tasks_per_second")
            rates = [LATENCY_RATE] + ([round(half / 2)] if half else [])
            for rate in rates:
                for name in names:
                    result = latency(
                        by_name[name],
                        brokers[kind],
                        rate=rate,
                        seconds=extra["latency"],
                        env=envs[name, kind],
                        directory=directory,
                    )
                    figures["latency"].append(result)
                    print(progress_of(result, "%s at %g/s" % (name, rate)), flush=True)
        if "enqueue" in extra:
            for how, name in (
                ("celery", "celery"),
                ("conveyor", "conveyor"),
                ("outbox-sqlite", "conveyor"),
                ("outbox-postgres", "payments-postgres"),
            ):
                if name in by_name:
                    result = enqueue_cost(how, env=envs[name, kind], count=extra["enqueue"])
                    result["broker"] = kind
                    figures["enqueue"].append(result)
                    print(progress_of(result, "enqueue %s" % how, kind), flush=True)
    return figures


def progress_of(result: dict, what: str, kind: str = "") -> str:
    head = "%-8s  %-24s" % (kind or result.get("broker", ""), what)
    if result.get("error"):
        return "%s  FAILED: %s" % (head, result["error"].replace("\n", "\n    "))
    return "%s  p50 %.2f ms  p99 %.2f ms  max %.2f ms" % (
        head,
        result["p50_ms"],
        result["p99_ms"],
        result["max_ms"],
    )


def latency_table(figures: dict, kind: str) -> list[str]:
    lines = []
    if figures["latency"]:
        lines.append("%-22s %9s %9s %9s" % ("enqueue -> start", "p50 ms", "p99 ms", "max ms"))
    for result in figures["latency"]:
        if result["broker"] == kind:
            name = "%s at %g/s" % (result["system"], result["rate"])
            lines.append(_percentile_line(name, result))
    if figures["enqueue"]:
        lines.append("%-22s %9s %9s %9s" % ("enqueue, in the caller", "p50 ms", "p99 ms", "max ms"))
    for result in figures["enqueue"]:
        if result["broker"] == kind:
            lines.append(_percentile_line(result["name"], result))
    return lines


def _percentile_line(name: str, result: dict) -> str:
    if result.get("error"):
        return "%-22s %s" % (name, result["error"].splitlines()[0])
    line = "%-22s %9.2f %9.2f %9.2f" % (name, result["p50_ms"], result["p99_ms"], result["max_ms"])
    senders = result.get("senders", 1)
    return line + ("  (%d senders)" % senders if senders > 1 else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--tasks", type=int, help="messages per run (default: the profile's)")
    parser.add_argument("--repeat", type=int, help="repetitions (default: the profile's)")
    parser.add_argument("--broker", action="append", choices=list(BROKERS))
    parser.add_argument("--system", action="append", choices=list(SYSTEMS))
    parser.add_argument("--timeout", type=float, default=120, help="seconds a drain may take")
    parser.add_argument("--json", type=Path, default=None, help="where the measurements go")
    parser.add_argument("--png", type=Path, default=None, help="where the chart goes")
    parser.add_argument(
        "--workload", action="append", choices=WORKLOADS, help="default: all of them"
    )
    args = parser.parse_args(argv)
    # A SIGTERM stops the run like Ctrl-C: workers and brokers are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    tasks, repeat = PROFILES[args.profile]
    tasks, repeat = args.tasks or tasks, args.repeat or repeat
    kinds = list(dict.fromkeys(args.broker or BROKERS))
    named = args.system or [name for name, system in SYSTEMS.items() if not system.ablation]
    systems = [SYSTEMS[name] for name in dict.fromkeys(named)]
    output = args.json or Path(os.environ.get("RUN_DIR", ".run")) / "bench.json"
    chart_path = args.png or output.with_suffix(".png")
    workloads = args.workload or WORKLOADS
    extra = {
        name: value
        for name, value in (
            ("latency", LATENCY_SECONDS[args.profile]),
            ("enqueue", ENQUEUE_CALLS[args.profile]),
        )
        if name in workloads
    }
    if "drain" not in workloads:
        repeat = 0
    print(
        "drain benchmark: %d tasks, repetitions: %d, CPUs: %d; %s on %s"
        % (tasks, repeat, os.cpu_count(), ", ".join(s.name for s in systems), ", ".join(kinds)),
        flush=True,
    )

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as name:
        measurements, figures, versions = run(
            Path(name),
            kinds,
            systems,
            tasks=tasks,
            repeat=repeat,
            timeout=args.timeout,
            extra=extra,
        )

    results = summaries(measurements)
    for kind in kinds:
        print()
        print(
            "%s %s, %d tasks, repetitions: %d" % (kind, versions[kind + "-server"], tasks, repeat)
        )
        print("\n".join(table(results.get(kind, {}))))
        if figures["latency"] or figures["enqueue"]:
            print("\n".join(latency_table(figures, kind)))
    report = {
        "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "profile": args.profile,
        "cpu_count": os.cpu_count(),
        "tasks": tasks,
        "repeat": repeat,
        "poll_seconds": POLL_SECONDS,
        "rabbitmq_in_flight_at_end_at_most": {s.name: s.rabbitmq_prefetch for s in systems},
        "versions": versions,
        "seconds": round(time.monotonic() - began),
        "summary": results,
        "measurements": [m.as_dict() for m in measurements],
        **figures,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    if results:
        chart(results, chart_path, title="%d tasks, %s" % (tasks, report["date"]))
        print("chart in %s" % chart_path)
    print(
        "\n%d runs, %d failed, %d s; measurements in %s"
        % (
            len(measurements),
            sum(not m.ok for m in measurements),
            report["seconds"],
            output,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
