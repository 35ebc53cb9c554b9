"""Celery as cookiecutter-django configures it (``config/celery_app.py`` and the
``CELERY_*`` block of ``config/settings/base.py``), without Django.

    BENCH_BROKER_URL=... BENCH_RESULT_URL=redis://... celery -A bench.cookiecutter worker

Results go to Redis (cookiecutter's ``REDIS_URL``), also when the broker is RabbitMQ.
Cookiecutter connects ``setup_logging`` to configure Django's ``LOGGING``; there is no
Django here, so logging is Celery's own at the worker's ``-l`` level, as for the others.
"""

import os

from celery import Celery

app = Celery("cookiecutter", broker=os.environ["BENCH_BROKER_URL"])
app.conf.update(
    timezone="UTC",
    result_backend=os.environ["BENCH_RESULT_URL"],
    result_extended=True,
    result_backend_always_retry=True,
    result_backend_max_retries=10,
    accept_content=["json"],
    task_serializer="json",
    result_serializer="json",
    task_time_limit=5 * 60,
    task_soft_time_limit=60,
    worker_send_task_events=True,
    task_send_sent_event=True,
    worker_hijack_root_logger=False,
)


@app.task
def add(x, y):
    """Return ``x + y``."""
    return x + y
