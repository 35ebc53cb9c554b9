"""The scenarios: each starts a stack (:mod:`faults.stack`), drives payments through the
HTTP API while it injects its faults at moments drawn from the run's seed, lets the
stack drain, and accounts for every payment the API acknowledged (:mod:`faults.ledger`).

Sizes come from the run's profile: ``quick`` (CI) or ``full`` (``make faults``).
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from tests.processes import BASE_DIR, Process

from . import ledger
from .stack import Stack, descendants, sigkill

#: How long a drain may take after the last fault before the run says what is left.
DRAIN_TIMEOUT_SECONDS = 180

#: Sizes by profile: payments, faults.
SIZES = {
    "quick": {
        "headline": (150, 3),
        "pool_kills": (300, None),
        "fetch_race": (None, 12),
        "broker_down": (20, 1),
        "poison": (300, 1),
        "retry_exhaustion": (5, 0),
        "negative_control": (300, 4),
    },
    "full": {
        "headline": (1000, 10),
        "pool_kills": (2000, None),
        "fetch_race": (None, 300),
        "broker_down": (100, 1),
        "poison": (1500, 1),
        "retry_exhaustion": (20, 0),
        "negative_control": (1000, 10),
    },
}


@dataclass
class Row:
    scenario: str
    broker: str
    db: str
    seed: int
    faults: int = 0
    expected: int = 0
    count: ledger.Count = field(default_factory=ledger.Count)
    drain_seconds: float = 0.0
    checks: dict = field(default_factory=dict)
    #: Figures reported without a verdict.
    notes: list = field(default_factory=list)
    seconds: float = 0.0
    #: The negative control: the run must see loss.
    expects_loss: bool = False

    @property
    def verdict(self) -> str:
        if self.expects_loss:
            return "pass" if self.count.lost > 0 else "FAIL"
        ok = self.count.lost == 0 and self.count.duplicate == 0 and all(self.checks.values())
        return "pass" if ok else "FAIL"

    def as_dict(self) -> dict:
        return {**asdict(self), "count": self.count.as_dict(), "verdict": self.verdict}


@dataclass
class Run:
    """What a scenario needs: where, on what, with which seed and profile."""

    directory: Path
    broker: str
    db: str
    seed: int
    profile: str
    postgres_url: str

    @property
    def rng(self) -> random.Random:
        return random.Random("%s:%s:%s:%s" % (self.seed, self.broker, self.db, self.profile))

    def size(self, scenario: str):
        return SIZES[self.profile][scenario]

    def stack(self, name: str, **env) -> Stack:
        return Stack(
            self.directory / name,
            broker=self.broker,
            db=self.db,
            postgres_url=self.postgres_url,
            **env,
        )

    def row(self, scenario: str, **fields) -> Row:
        return Row(scenario=scenario, broker=self.broker, db=self.db, seed=self.seed, **fields)


# -- helpers ----------------------------------------------------------------------------


def post_many(stack: Stack, count: int, *, source: str = "tok_ok", threads: int = 4):
    """Post ``count`` payments; return the acknowledged ids and the slowest answer.
    Answers other than 202 go to ``stack.refused``."""
    with ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(lambda _: stack.post_payment(source=source), range(count)))
    acknowledged = [a for a in answers if a.get("status") == "pending"]
    stack.refused += [a for a in answers if a.get("status") != "pending"]
    slowest = max((a["seconds"] for a in acknowledged), default=0.0)
    return [a["id"] for a in acknowledged], slowest


def acknowledged_check(stack: Stack, intents: list[str], payments: int) -> dict:
    """The check that the API acknowledged every post, naming the first refusal."""
    refused = "; first refused: %s" % stack.refused[0] if stack.refused else ""
    return {
        "every post acknowledged (%d of %d)%s" % (len(intents), payments, refused): (
            len(intents) == payments
        )
    }


def drain(stack: Stack, intents: list[str], *, timeout: float = DRAIN_TIMEOUT_SECONDS) -> float:
    """Wait until every intent has come to rest (or ``timeout``); return the seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if ledger.resolved(stack.database, intents):
            break
        time.sleep(0.2)
    return round(time.monotonic() - started, 1)


def in_background(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


# -- scenarios --------------------------------------------------------------------------


def headline(run: Run) -> Row:
    """Payments over HTTP while 2 workers run; whole workers SIGKILLed at random moments
    (each restarted), and one kill -9 of the broker (restarted)."""
    payments, kills = run.size("headline")
    rng, stack = run.rng, run.stack("headline").start(workers=2)
    intents: list[str] = []
    try:
        poster = in_background(lambda: intents.extend(post_many(stack, payments)[0]))
        broker_crash_at = rng.randrange(kills + 1)
        for kill in range(kills + 1):
            time.sleep(rng.uniform(0.5, 2.5))
            if kill == broker_crash_at:
                stack.crash_broker()
            if kill < kills:
                # its replacement starts at once, and may itself be killed while it boots
                stack.kill_worker(rng.choice(stack.workers))
                stack.start_workers(1, ready=False)
        poster.join()
        seconds = drain(stack, intents)
        return run.row(
            "headline",
            faults=kills + 1,
            expected=payments,
            count=ledger.count(stack.database, intents),
            drain_seconds=seconds,
            checks=acknowledged_check(stack, intents, payments),
        )
    finally:
        stack.stop()


def pool_kills(run: Run) -> Row:
    """A drain of payments while pool processes are SIGKILLed every 0.5-2 s."""
    payments, _ = run.size("pool_kills")
    # The gateway takes 100 ms to answer after charging: a kill then leaves a charge
    # its payment does not know of, for the next delivery to find.
    rng, stack = run.rng, run.stack("pool_kills", GATEWAY_LATENCY_MS="100").start(workers=2)
    try:
        intents, _ = post_many(stack, payments)
        kills = 0
        while not ledger.resolved(stack.database, intents) and kills < 400:
            time.sleep(rng.uniform(0.5, 2.0))
            pools = [pid for worker in stack.workers for pid in stack.pool_processes(worker)]
            if pools:
                sigkill([rng.choice(pools)])
                kills += 1
        seconds = drain(stack, intents)
        return run.row(
            "pool_kills",
            faults=kills,
            expected=payments,
            count=ledger.count(stack.database, intents),
            drain_seconds=seconds,
        )
    finally:
        stack.stop()


def fetch_race(run: Run) -> Row:
    """Whole-worker SIGKILLs, half while the worker waits on a trickle of payments, half
    while it drains a backlog: the moments a fetch is in flight."""
    _, kills = run.size("fetch_race")
    if run.broker == "rabbitmq":
        # The race is Redis's (a fetch in two steps); RabbitMQ hands a message to a
        # consumer and holds it for the channel in one, so fewer kills check it there.
        kills //= 3
    rng, stack = run.rng, run.stack("fetch_race").start(workers=0)
    intents: list[str] = []
    try:
        for kill in range(kills):
            waiting = kill % 2 == 0
            if not waiting:
                intents += post_many(stack, 6)[0]
            worker = stack.start_worker()
            if waiting:
                for _ in range(2):
                    time.sleep(rng.uniform(0, 0.15))
                    intents += post_many(stack, 1)[0]
            time.sleep(rng.uniform(0, 0.3))
            stack.kill_worker(worker)
        stack.start_worker()
        seconds = drain(stack, intents)
        return run.row(
            "fetch_race",
            faults=kills,
            expected=len(intents),
            count=ledger.count(stack.database, intents),
            drain_seconds=seconds,
        )
    finally:
        stack.stop()


def broker_down(run: Run) -> Row:
    """The broker stopped while clients post payments: every request answered within 5 s,
    every payment processed once the broker is back."""
    payments, _ = run.size("broker_down")
    stack = run.stack("broker_down").start(workers=2)
    try:
        stack.broker.stop()
        intents, slowest = post_many(stack, payments)
        time.sleep(run.rng.uniform(2, 6))
        stack.broker.start()
        seconds = drain(stack, intents)
        return run.row(
            "broker_down",
            faults=1,
            expected=payments,
            count=ledger.count(stack.database, intents),
            drain_seconds=seconds,
            checks={
                **acknowledged_check(stack, intents, payments),
                "slowest answer %.2f s < 5 s" % slowest: slowest < 5,
            },
        )
    finally:
        stack.stop()


def poison(run: Run) -> Row:
    """A payment whose task kills its worker on every delivery: dead-lettered within the
    delivery limit, awaiting an operator, while other payments flow at >= 80% of the
    throughput of the same drain without it (each drain timed from 2 workers' start)."""
    payments, _ = run.size("poison")
    # Each charge takes 50 ms, so that a drain lasts long enough to time.
    stack = run.stack("poison", GATEWAY_LATENCY_MS="50").start(workers=0)
    try:
        baseline_ids, _ = post_many(stack, payments)
        baseline = _timed_drain(stack, baseline_ids)
        for worker in list(stack.workers):
            stack.kill_worker(worker)
        poisoned = stack.post_payment(source="tok_crash")["id"]
        good, _ = post_many(stack, payments)
        with_poison = _timed_drain(stack, good)
        drain(stack, [poisoned])
        intents = [*baseline_ids, poisoned, *good]
        reasons = [
            letter["reason"] for letter in stack.dead_letters() if letter["args"] == [poisoned]
        ]
        status = ledger.statuses(stack.database)[ledger.key(poisoned)]
        ratio = baseline / with_poison if with_poison else 0.0
        throughput = "throughput with poison %.0f%% (%.1f s against %.1f s) >= 80%%" % (
            100 * ratio,
            with_poison,
            baseline,
        )
        checks = {
            "poison awaiting_operator": status == "awaiting_operator",
            "dead-lettered for its delivery limit": reasons == ["delivery_limit"],
        }
        # The quick profile's drains last seconds, where one slow restart of a pool
        # process moves the ratio by 10%: it reports the figure, the full run judges it.
        if run.profile == "full":
            checks[throughput] = ratio >= 0.8
        return run.row(
            "poison",
            faults=1,
            expected=len(intents),
            count=ledger.count(stack.database, intents),
            drain_seconds=with_poison,
            checks=checks,
            notes=[] if run.profile == "full" else [throughput],
        )
    finally:
        stack.stop()


def _timed_drain(stack: Stack, intents: list[str]) -> float:
    """Start 2 workers on a backlog; the seconds from their start until it is drained."""
    stack.start_workers(2)
    return drain(stack, intents)


def retry_exhaustion(run: Run) -> Row:
    """A gateway down for good: each payment is tried exactly max_retries + 1 times, then
    dead-lettered exactly once and left to an operator."""
    payments, _ = run.size("retry_exhaustion")
    stack = run.stack("retry_exhaustion", GATEWAY_OUTAGE="1", TASK_MAX_RETRIES="2")
    stack.start(workers=1)
    try:
        intents, _ = post_many(stack, payments)
        seconds = drain(stack, intents)
        attempts = [n for (n,) in stack.database.query("SELECT attempts FROM payments_payment")]
        letters = [letter for letter in stack.dead_letters() if letter["reason"] == "failed"]
        return run.row(
            "retry_exhaustion",
            expected=payments,
            count=ledger.count(stack.database, intents),
            drain_seconds=seconds,
            checks={
                "3 attempts each (max_retries 2 + 1)": attempts == [3] * payments,
                "one dead letter each": len(letters) == payments,
            },
        )
    finally:
        stack.stop()


def shutdowns(run: Run) -> Row:
    """Warm and cold shutdown with a 5 s charge running, and a 30 s countdown whose worker
    is SIGKILLed: the charges happen once, the countdown runs once, not early, at most
    5 s late."""
    stack = run.stack("shutdowns", GATEWAY_LATENCY_MS="5000").start(workers=0, beat=False)
    checks = {}
    try:
        # warm: the running charge finishes before the worker exits
        worker = stack.start_worker(WORKER_STOP_GRACE_SECONDS="20")
        warm, _ = post_many(stack, 1)
        worker.wait_for("Charging payment %s" % warm[0])
        worker.signal(signal.SIGTERM)
        worker.wait(timeout=60)
        stack.workers.remove(worker)
        finished = worker.matching("Payment %s processed" % warm[0])
        checks["warm: finished before exit"] = bool(finished)
        # cold: the charge is cancelled and handed back, and runs again on the next start
        worker = stack.start_worker(WORKER_STOP_GRACE_SECONDS="1")
        cold, _ = post_many(stack, 1)
        worker.wait_for("Charging payment %s" % cold[0])
        worker.signal(signal.SIGTERM)
        worker.wait(timeout=60)
        stack.workers.remove(worker)
        checks["cold: handed back"] = not worker.matching("Payment %s processed" % cold[0])
        # a countdown held by a worker that is killed
        worker = stack.start_worker(GATEWAY_LATENCY_MS="0")
        sent = time.time()
        task_id = stack.celery(
            "call", "apps.users.tasks.add", "--args", "[20, 22]", "--countdown", "30"
        ).strip()
        # Redis: the worker holds the countdown; RabbitMQ: the broker does (delayed delivery).
        time.sleep(2)
        stack.kill_worker(worker)
        again = stack.start_worker(GATEWAY_LATENCY_MS="0")
        intents = warm + cold
        seconds = drain(stack, intents)
        line = again.wait_for(r"add\[%s\] succeeded" % task_id, timeout=90)[0]
        ran = datetime.fromisoformat(json.loads(line)["timestamp"]).timestamp()
        runs = len(again.matching(r"Adding 20 \+ 22")) + len(worker.matching(r"Adding 20 \+ 22"))
        checks["countdown ran once, %+.1f s after its time" % (ran - sent - 30)] = (
            runs == 1 and 0 <= ran - sent - 30 <= 5
        )
        return run.row(
            "shutdowns",
            faults=3,
            expected=2,
            count=ledger.count(stack.database, intents),
            drain_seconds=seconds,
            checks=checks,
        )
    finally:
        stack.stop()


def negative_control(run: Run) -> Row:
    """Bare Celery, with its default early acknowledgement, under the same whole-worker
    kills during a drain: it must lose tasks, or this harness could not see loss."""
    tasks, kills = run.size("negative_control")
    rng, stack = run.rng, run.stack("negative_control")
    stack.broker.start()
    done = stack.directory / "done.sqlite3"
    env = {**stack.env, "BARE_BROKER_URL": stack.broker.broker_url, "BARE_LEDGER": str(done)}
    workers: list[Process] = []

    def start():
        worker = Process(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "faults.bare",
                "worker",
                "-c",
                "2",
                "-l",
                "info",
                "--hostname=bare%d@%%h" % len(workers),
            ],
            env,
            name="bare worker",
        )
        workers.append(worker.start())
        worker.wait_for(r"\bready\b", timeout=90)
        return worker

    try:
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from faults.bare import record\nfor n in range(%d): record.delay(n)" % tasks,
            ],
            cwd=BASE_DIR,
            env=env,
            check=True,
            timeout=120,
        )
        worker = start()
        for _ in range(kills):
            time.sleep(rng.uniform(0.3, 1.0))
            sigkill(descendants(worker.process.pid))
            worker = start()
        started = time.monotonic()
        previous = -1
        while time.monotonic() - started < 60:
            finished = _bare_done(done)
            if finished in (tasks, previous):
                break
            previous = finished
            time.sleep(3)
        finished = _bare_done(done)
        return run.row(
            "negative_control",
            faults=kills,
            expected=tasks,
            count=ledger.Count(intents=tasks, processed=finished, lost=tasks - finished),
            expects_loss=True,
        )
    finally:
        for worker in workers:
            if worker.running:
                sigkill(descendants(worker.process.pid))
        stack.broker.stop()


def _bare_done(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as db:
        return len({n for (n,) in db.execute("SELECT n FROM done")})


SCENARIOS = {
    "headline": headline,
    "pool_kills": pool_kills,
    "fetch_race": fetch_race,
    "broker_down": broker_down,
    "poison": poison,
    "retry_exhaustion": retry_exhaustion,
    "shutdowns": shutdowns,
    "negative_control": negative_control,
}
