"""Tasks that only the tests' worker processes load (``CELERY_IMPORTS`` in test settings)."""

import logging
import os
import signal
import time

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="tests.tasks.kill_own_process")
def kill_own_process():
    """Die as a segfault or the OOM killer would: the worker's pool process vanishes."""
    os.kill(os.getpid(), signal.SIGKILL)


@shared_task(name="tests.tasks.sleep_then_return", ignore_result=False)
def sleep_then_return(seconds, value):
    """Take ``seconds`` to return ``value`` (a long task, for shutdown tests)."""
    logger.info("Sleeping %s s before returning %r.", seconds, value)
    time.sleep(seconds)
    return value


@shared_task(name="tests.tasks.enqueue_add", ignore_result=False)
def enqueue_add(x, y):
    """Enqueue add(x, y) from inside a task (its correlation id is inherited)."""
    from apps.users.tasks import add

    return add.delay(x, y).id


@shared_task(name="tests.tasks.sleep_ignoring_sigterm", ignore_result=False)
def sleep_ignoring_sigterm(seconds):
    """Sleep ``seconds`` in a pool process that ignores SIGTERM, as code stuck in a C call
    does: the worker's cold shutdown cannot cancel it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logger.info("Sleeping %s s, deaf to SIGTERM.", seconds)
    time.sleep(seconds)
    return seconds


#: The database connections this process's tasks used, kept so that no id is reused.
_connections = []


@shared_task(name="tests.tasks.database_connections", ignore_result=False)
def database_connections():
    """Use the database; return how many distinct connections this process has used."""
    from django.db import connection

    connection.ensure_connection()
    _connections.append(connection.connection)
    return len({id(each) for each in _connections})
