"""Celery signal receivers: logging set-up, correlation ids on task messages, and the
metrics every task run and publication counts (:mod:`apps.delivery.metrics`).

Imported by ``config/celery.py``, so every process that loads the Celery app has them.
"""

from __future__ import annotations

import logging
import sys

from celery import signals
from celery.apps import worker as celery_worker

from ..checks import unread_variable_warnings
from ..logs.context import (
    CORRELATION_HEADER,
    current_correlation_id,
    mask_passwords,
    new_correlation_id,
    set_process_role,
)
from ..logs.setup import configure, is_json
from ..metrics import instruments

logger = logging.getLogger(__name__)


def _logging_settings() -> dict:
    from django.conf import settings

    return settings.LOGGING


@signals.celeryd_init.connect
def set_up_worker_logging(sender=None, **kwargs):
    # Before the worker checks its privileges (a warning) or prints anything.
    set_process_role("worker")
    configure(_logging_settings())


@signals.setup_logging.connect
def use_django_logging(loglevel=None, **kwargs):
    """Celery keeps its hands off logging: the worker and beat use Django's ``LOGGING``."""
    configure(_logging_settings())


@signals.celeryd_after_setup.connect
def quiet_banner_in_json(sender=None, instance=None, **kwargs):
    # The start-up banner is printed, not logged: in JSON mode, leave it out.
    if is_json(_logging_settings()):
        instance.quiet = True
        # Celery writes its shutdown notices ("worker: Warm shutdown (MainProcess)")
        # straight to the file descriptor, past sys.stdout; in JSON mode they go through
        # it, and come out as JSON records like every other line.
        celery_worker.safe_say = _say_through_stdout


def _say_through_stdout(msg, f=None):
    sys.stdout.write("%s\n" % msg)
    sys.stdout.flush()


@signals.beat_init.connect
def set_beat_role(sender=None, **kwargs):
    set_process_role("beat")
    _log_connections("beat", sender.app)


@signals.beat_init.connect
def serve_beat_metrics(sender=None, **kwargs):
    """Beat serves its metrics on ``BEAT_METRICS_PORT`` (not at all when it is 0), from a
    daemon thread that ends with the process."""
    from django.conf import settings

    from ..metrics.exposition import serve

    if settings.BEAT_METRICS_PORT:
        serve(
            "beat",
            port=settings.BEAT_METRICS_PORT,
            address=settings.METRICS_ADDRESS,
            token=settings.METRICS_TOKEN,
            required=settings.METRICS_TOKEN_REQUIRED,
        )


@signals.worker_ready.connect
def log_worker_connections(sender=None, **kwargs):
    _log_connections("worker", sender.app)


def _log_connections(role: str, app) -> None:
    from django.conf import settings

    # Once per process, as manage.py check would: a misspelt variable's setting kept
    # its default.
    for message in unread_variable_warnings():
        logger.warning("%s", message)

    database = settings.DATABASES["default"]
    logger.info(
        "Conveyor %s started: broker %s, results %s, database %s %s.",
        role,
        mask_passwords(app.conf.broker_url),
        mask_passwords(str(app.conf.result_backend)),
        database["ENGINE"].rsplit(".", 1)[-1],
        database.get("HOST") or database["NAME"],
    )


@signals.worker_shutting_down.connect
def log_shutdown(sender=None, sig=None, how=None, **kwargs):
    # Celery prints "worker: Warm shutdown (MainProcess)" straight to the terminal;
    # this is the same news as a log record.
    logger.info("worker: %s shutdown (MainProcess), on %s.", how, sig)


@signals.before_task_publish.connect
def add_correlation_id(headers=None, **kwargs):
    """Every task message carries a correlation id: the request's or the task's, else new."""
    if headers is not None and not headers.get(CORRELATION_HEADER):
        headers[CORRELATION_HEADER] = current_correlation_id() or new_correlation_id()


@signals.before_task_publish.connect
def add_publication_time(headers=None, **kwargs):
    """Every task message carries the time it was published (the latency's start)."""
    if headers is not None:
        instruments.stamp_publication(headers)


@signals.after_task_publish.connect
def count_publication(sender=None, **kwargs):
    instruments.count_publication(sender)


# -- task runs, in the process that runs them (a pool process) ---------------------------


@signals.task_prerun.connect
def count_task_start(sender=None, task_id=None, task=None, **kwargs):
    instruments.task_started(task.name, task_id, task.request)


@signals.task_postrun.connect
def count_task_end(sender=None, task_id=None, task=None, **kwargs):
    instruments.task_ended(task.name, task_id)


@signals.task_success.connect
def count_task_success(sender=None, **kwargs):
    instruments.task_outcome(sender.name, "succeeded")


@signals.task_retry.connect
def count_task_retry(sender=None, reason=None, **kwargs):
    # reason: the Retry exception; its exc, the failure that caused it.
    instruments.task_retried(sender.name, getattr(reason, "exc", None))


@signals.task_failure.connect
def count_task_failure(sender=None, **kwargs):
    instruments.task_outcome(sender.name, "failed")
