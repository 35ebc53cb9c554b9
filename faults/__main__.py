"""``python -m faults``: run the fault scenarios and print what they prove.

    python -m faults --profile full                  # make faults: every scenario, both
                                                     # brokers, both databases
    python -m faults --profile quick                 # make faults-quick (CI)
    python -m faults --seed 1407 --only headline --broker redis --db sqlite

Prints the seed first: the same seed repeats a run's faults. Writes every figure to
``--json`` (default ``RUN_DIR/faults.json``). Exits 1 if any row fails: a Conveyor row
that lost a payment, charged one twice or missed a check, or a negative control that
lost nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from .scenarios import SCENARIOS, Row, Run

#: The full matrix leaves some scenarios on one database: a broker's behaviour does not
#: depend on it, and the budget is about 30 minutes.
ONE_DATABASE = {"fetch_race", "negative_control", "shutdowns"}

COLUMNS = (
    ("scenario", 16),
    ("broker", 12),
    ("db", 8),
    ("seed", 6),
    ("faults", 6),
    ("expected", 8),
    ("processed", 9),
    ("held", 4),
    ("lost", 5),
    ("dup", 4),
    ("absorbed", 8),
    ("drain s", 7),
    ("verdict", 7),
    ("run s", 5),
)


#: The full matrix also runs these scenarios on Redis writing its append-only file to
#: disk before it answers each write (``appendfsync always``).
ALWAYS_FSYNC = {"headline"}


def matrix(profile: str, brokers: list[str], dbs: list[str], only: list[str] | None):
    for name in only or SCENARIOS:
        variants = list(brokers)
        if profile == "full" and name in ALWAYS_FSYNC and "redis" in variants:
            variants.insert(variants.index("redis") + 1, "redis-always")
        for broker in dict.fromkeys(variants):
            databases = dbs[:1] if (profile == "quick" or name in ONE_DATABASE) else dbs
            for db in databases:
                yield name, broker, db


def table_line(row: Row) -> str:
    values = (
        row.scenario,
        row.broker,
        row.db,
        row.seed,
        row.faults,
        row.expected,
        row.count.processed,
        row.count.awaiting_operator + row.count.failed,
        row.count.lost,
        row.count.duplicate,
        row.count.absorbed,
        row.drain_seconds,
        row.verdict,
        row.seconds,
    )
    return "  ".join(
        str(value).ljust(width) for value, (_, width) in zip(values, COLUMNS, strict=True)
    )


def header() -> str:
    return "  ".join(name.ljust(width) for name, width in COLUMNS)


def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("celery", "kombu", "django", "redis")}


def keep_logs(directory: Path, destination: Path) -> Path:
    """Copy a run's logs (its processes', its broker's) out of its temporary directory."""
    shutil.rmtree(destination, ignore_errors=True)
    for log in directory.rglob("*.log"):
        target = destination / log.relative_to(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, target)
    return destination


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["quick", "full"], default="quick")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run's faults")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--broker", action="append", choices=["redis", "redis-always", "rabbitmq"])
    parser.add_argument("--db", action="append", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("POSTGRES_TEST_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server where the run may create and drop databases",
    )
    parser.add_argument("--json", type=Path, default=None, help="where the figures go")
    args = parser.parse_args(argv)
    # A SIGTERM (a CI timeout, kill) stops the run like Ctrl-C: each stack is torn down.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    brokers = args.broker or ["redis", "rabbitmq"]
    dbs = args.db or (["sqlite"] if args.profile == "quick" else ["sqlite", "postgres"])
    output = args.json or Path(os.environ.get("RUN_DIR", ".run")) / "faults.json"
    print("fault suite: profile %s, seed %d (repeat with --seed %d)" % (args.profile, seed, seed))
    print(header(), flush=True)

    rows = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="conveyor-faults-") as directory:
        for name, broker, db in matrix(args.profile, brokers, dbs, args.only):
            run = Run(
                Path(directory) / ("%s-%s-%s" % (name, broker, db)),
                broker,
                db,
                seed,
                args.profile,
                args.postgres_url,
            )
            began = time.monotonic()
            try:
                row = SCENARIOS[name](run)
            except Exception as exc:
                traceback.print_exc()
                row = run.row(name, checks={"ran: %s: %s" % (type(exc).__name__, exc): False})
            row.seconds = round(time.monotonic() - began, 1)
            rows.append(row)
            print(table_line(row), flush=True)
            for check, ok in row.checks.items():
                print("    %s %s" % ("ok  " if ok else "FAIL", check), flush=True)
            for note in row.notes:
                print("    note %s" % note, flush=True)
            if row.count.lost_ids:
                print("    lost: %s" % ", ".join(row.count.lost_ids[:10]), flush=True)
            if row.verdict != "pass":
                kept = keep_logs(run.directory, output.parent / "faults" / run.directory.name)
                print("    logs of the stack kept in %s" % kept, flush=True)

    failed = [row for row in rows if row.verdict != "pass"]
    report = {
        "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "profile": args.profile,
        "seed": seed,
        "versions": versions(),
        "seconds": round(time.monotonic() - started),
        "rows": [row.as_dict() for row in rows],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, default=str))
    print(
        "%d rows, %d failed, %d s; figures in %s"
        % (len(rows), len(failed), report["seconds"], output)
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
