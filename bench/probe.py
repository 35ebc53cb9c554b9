"""The latency probe: a task that writes down how late it started, and the open-loop
sender that sends it at a fixed rate.

The worker loads the task with ``--include bench.probe`` (Conveyor's worker as shipped,
or bare Celery's); each run appends ``start - intended send time`` in seconds, one line
per task, to ``BENCH_PROBE_FILE``.

    python -m bench.probe SYSTEM RATE SECONDS [SENDERS INDEX]
                                    # send; print {"sent", "behind"} as JSON

Open loop: message ``i`` is due at ``start + i / RATE`` and carries that time, whether or
not the sender keeps up; ``behind`` is how late the last one went out. The sender
connects, prints ``ready``, and reads ``start`` (a Unix time) from its standard input.
A rate one sender cannot keep is shared by ``SENDERS`` processes on one schedule:
sender ``INDEX`` sends messages ``INDEX``, ``INDEX + SENDERS``, ...
"""

from __future__ import annotations

import json
import os
import sys
import time

from celery import shared_task


@shared_task(name="bench.probe.started", ignore_result=True)
def started(intended: float) -> None:
    """Append how late this task started, after its intended send time."""
    line = ("%.6f\n" % (time.time() - intended)).encode()
    fd = os.open(os.environ["BENCH_PROBE_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def app_of(system: str):
    """The Celery app a system's client publishes with."""
    if system == "conveyor":
        import django

        django.setup()
        from config.celery import app

        return app
    from bench.bare import app

    return app


def send(system: str, rate: float, seconds: float, *, senders: int = 1, index: int = 0) -> dict:
    app = app_of(system)
    task = app.tasks[started.name]
    mine = range(index, int(rate * seconds), senders)
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection()
        print("ready", flush=True)
        start = intended = float(sys.stdin.readline())
        for n in mine:
            intended = start + n / rate
            wait = intended - time.time()
            if wait > 0:
                time.sleep(wait)
            task.apply_async((intended,), producer=producer)
    return {"sent": len(mine), "behind": max(0.0, time.time() - intended)}


if __name__ == "__main__":
    system, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    senders, index = map(int, sys.argv[4:6]) if sys.argv[4:] else (1, 0)
    print(json.dumps(send(system, rate, seconds, senders=senders, index=index)))
