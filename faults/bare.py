"""The negative control: a bare Celery app with Celery's defaults (early
acknowledgement, prefetch of 4 per process), which a killed worker does lose tasks of.

    BARE_BROKER_URL=... BARE_LEDGER=/path/done.sqlite3 celery -A faults.bare worker

Each task records its number in a SQLite file when it finishes; what was sent and never
recorded is lost. If the fault suite cannot see loss here, it cannot see loss anywhere.
"""

import os
import sqlite3
import time

from celery import Celery

app = Celery("bare", broker=os.environ.get("BARE_BROKER_URL", "redis://127.0.0.1:6379/0"))


def ledger() -> sqlite3.Connection:
    db = sqlite3.connect(os.environ["BARE_LEDGER"], timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS done (n INTEGER)")
    return db


@app.task(name="bare.record")
def record(n):
    """Work a moment, then write ``n`` down."""
    time.sleep(0.05)
    with ledger() as db:
        db.execute("INSERT INTO done VALUES (?)", (n,))
