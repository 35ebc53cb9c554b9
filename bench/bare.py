"""Bare Celery with its defaults: early acknowledgement, a prefetch of 4 per process,
the ``celery`` queue, no result backend.

    BENCH_BROKER_URL=... celery -A bench.bare worker
"""

import os

from celery import Celery

app = Celery("bare", broker=os.environ["BENCH_BROKER_URL"])


@app.task
def add(x, y):
    """Return ``x + y``."""
    return x + y
