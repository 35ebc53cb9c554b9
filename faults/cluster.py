"""``python -m faults.cluster`` (``make cluster-check``): Conveyor on a three-node RabbitMQ
cluster (:mod:`faults.rabbitmq_cluster`), a node lost and nothing with it.

Scenario ``leader_kill``: payments flow from two web processes, each attached to a
different node (its failover list starts there), to two workers attached to the two
other nodes; a third of the way through, the node that leads the task queue ``default``
is killed with ``kill -9``. The queue elects a new leader among the two left, the
clients on the lost node reconnect to the next in their list, and the publishes that
failed meanwhile wait in the outbox. At the end every payment the API acknowledged is
accounted for (:mod:`faults.ledger`), and the run reports how long the queue went
without a leader and how long after the kill the first payment posted after it was
processed.

Prints one row per scenario; exits 1 if a payment was lost or charged twice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from . import ledger
from .scenarios import Row, Run, acknowledged_check, drain

#: Payments by profile.
PAYMENTS = {"quick": 90, "full": 600}


def leader_kill(run: Run) -> Row:
    payments = PAYMENTS[run.profile]
    stack = run.stack("leader_kill")
    cluster = stack.broker
    try:
        stack.start(workers=0, beat=False)
        stack.start_worker(CELERY_BROKER_URL=cluster.url_from(1))
        stack.start_worker(CELERY_BROKER_URL=cluster.url_from(2))
        ports = [stack.web_port, stack.start_web(CELERY_BROKER_URL=cluster.url_from(1))]
        posted: list[tuple[str, float]] = []
        lock = threading.Lock()

        def post(port: int, count: int) -> None:
            for _ in range(count):
                answer = stack.post_payment(port=port)
                with lock:
                    if answer.get("status") == "pending":
                        posted.append((answer["id"], time.time()))
                    else:
                        stack.refused.append(answer)

        posters = [
            threading.Thread(target=post, args=(port, payments // 2), daemon=True) for port in ports
        ]
        for poster in posters:
            poster.start()
        # a third of the way through (and never before the queue has a leader)
        while len(posted) < payments // 3 and any(p.is_alive() for p in posters):
            time.sleep(0.05)
        leader = cluster.leader("default")
        killed_at = time.time()
        cluster.crash(leader)
        new_leader = _wait_for_leader(cluster, lost=leader)
        leaderless = round(time.time() - killed_at, 1)
        for poster in posters:
            poster.join(timeout=600)
        intents = [payment_id for payment_id, _ in posted]
        seconds = drain(stack, intents)
        after = [payment_id for payment_id, at in posted if at > killed_at]
        recovery = _first_processed(stack.database, after, since=killed_at)
        return run.row(
            "leader_kill",
            faults=1,
            expected=payments - payments % 2,
            count=ledger.count(stack.database, intents),
            drain_seconds=seconds,
            checks={
                **acknowledged_check(stack, intents, payments - payments % 2),
                "a new leader (%s)" % (new_leader.node if new_leader else None): bool(new_leader),
            },
            notes=[
                "killed %s, the leader of default" % leader.node,
                "seconds without a leader: %s" % leaderless,
                "seconds from the kill to the first payment posted after it processed: %s"
                % recovery,
            ],
        )
    finally:
        stack.stop()


def _wait_for_leader(cluster, *, lost, timeout: float = 60):
    """The queue's new leader, once one of the nodes left names it (None after
    ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            leader = cluster.leader("default")
        except RuntimeError:
            leader = None
        if leader is not None and leader is not lost:
            return leader
        time.sleep(0.2)
    return None


def _first_processed(database, payment_ids: list[str], *, since: float) -> float | None:
    """Seconds from ``since`` to the first of ``payment_ids`` processed."""
    wanted = {ledger.key(payment_id) for payment_id in payment_ids}
    moments = []
    for payment_id, processed_at in database.query(
        "SELECT id, processed_at FROM payments_payment WHERE processed_at IS NOT NULL"
    ):
        if ledger.key(payment_id) in wanted:
            if isinstance(processed_at, str):
                processed_at = datetime.fromisoformat(processed_at)
            if processed_at.tzinfo is None:
                processed_at = processed_at.replace(tzinfo=UTC)
            moments.append(processed_at.timestamp())
    return round(min(moments) - since, 1) if moments else None


SCENARIOS = {"leader_kill": leader_kill}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["quick", "full"], default="quick")
    parser.add_argument("--json", type=Path, default=None, help="where the figures go")
    args = parser.parse_args(argv)
    output = args.json or Path(os.environ.get("RUN_DIR", ".run")) / "cluster.json"
    print("cluster check: profile %s" % args.profile)
    columns = "scenario broker acknowledged processed lost duplicate_charges verdict"
    print(columns.replace(" ", "  "), flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="conveyor-cluster-") as directory:
        for name, scenario in SCENARIOS.items():
            # the scenario kills at a fixed point: no seed to draw faults from
            run = Run(Path(directory) / name, "rabbitmq-cluster", "sqlite", 0, args.profile, "")
            row = scenario(run)
            rows.append(row)
            count = row.count
            print(
                "  ".join(
                    str(value)
                    for value in (
                        name,
                        run.broker,
                        count.intents,
                        count.processed,
                        count.lost,
                        count.duplicate,
                        row.verdict,
                    )
                )
            )
            for note in row.notes:
                print("    %s" % note)
            for check, ok in row.checks.items():
                print("    %s: %s" % ("ok" if ok else "FAILED", check))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps([row.as_dict() for row in rows], indent=2, default=str))
    print("figures: %s" % output)
    return 0 if all(row.verdict == "pass" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
