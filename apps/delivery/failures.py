"""Failure classification: which exceptions are worth a retry, decided in one place.

A *transient* failure may not happen again (a timeout, a dropped connection, a 503):
the task is retried with backoff until its retries run out. A *permanent* failure will
happen again (a declined card, invalid input, a bug): the task is not retried. An
exception that says nothing about itself is permanent, so an unexpected error reaches
an operator at once instead of being repeated.

A failure's facts (exception, traceback, arguments, retries, times) are recorded in
:class:`TaskFailure`, keyed by task id, at every failure: the message itself reaches the
dead-letter queue unchanged (:mod:`apps.delivery.dead_letters`), and the operator tools
join the two. The facts go away when the task succeeds.
"""

from __future__ import annotations

import json
import traceback as traceback_module
from datetime import datetime, timedelta

from django.db import InterfaceError, OperationalError
from django.utils import timezone

from .models import TaskFailure

#: How much of a traceback is kept: its start and, above all, its end.
TRACEBACK_HEAD, TRACEBACK_TAIL = 2_000, 8_000


class TransientError(Exception):
    """A failure worth retrying: the same call may succeed later."""


class PermanentError(Exception):
    """A failure no retry can fix."""


#: Exceptions that are transient wherever they come from.
TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    TransientError,
    ConnectionError,
    TimeoutError,
    # Database connection lost, or SQLite busy beyond its timeout.
    OperationalError,
    InterfaceError,
)


def is_transient(exc: BaseException, *, extra: tuple[type[BaseException], ...] = ()) -> bool:
    """Return True if ``exc`` is worth a retry.

    ``extra`` adds exception types that a task declares transient (its ``retry_for``).
    A :class:`PermanentError` is never transient, even if it also derives from one of them.
    """
    if isinstance(exc, PermanentError):
        return False
    return isinstance(exc, TRANSIENT_EXCEPTIONS + tuple(extra))


# -- failure facts ---------------------------------------------------------------


def failure_record(
    *,
    task_id: str,
    task_name: str = "",
    reason: str = TaskFailure.Reason.FAILED,
    args=None,
    kwargs=None,
    routing_key: str = "",
    exc: BaseException | None = None,
    retries: int = 0,
    correlation_id: str = "",
    final: bool,
    permanent: bool = False,
    retry_in: float | None = None,
) -> None:
    """Record a failure of ``task_id`` (``final``: its message goes to the dead-letter queue;
    ``permanent``: its exception is not worth a retry; ``retry_in``: seconds until its
    retry is due)."""
    now = timezone.now()
    values = {
        "task_name": task_name,
        "reason": reason,
        "args": jsonable(args if args is not None else []),
        "kwargs": jsonable(kwargs if kwargs is not None else {}),
        "routing_key": routing_key,
        "exception_type": type(exc).__name__ if exc is not None else "",
        "exception_message": str(exc) if exc is not None else "",
        "traceback": truncate_traceback(_format_traceback(exc)),
        "retries": retries,
        "correlation_id": correlation_id or "",
        "last_failed_at": now,
        "dead_lettered_at": now if final else None,
        "permanent": permanent,
        "next_attempt_at": (
            now + timedelta(seconds=retry_in) if retry_in is not None and not final else None
        ),
    }
    TaskFailure.objects.update_or_create(
        task_id=task_id, defaults=values, create_defaults={**values, "first_failed_at": now}
    )


def failure_forget(*, task_id: str) -> None:
    """Drop the failure facts of a task that has now succeeded."""
    TaskFailure.objects.filter(task_id=task_id).delete()


def failure_facts_expire(*, older_than: datetime) -> int:
    """Delete the facts of failures no longer dead-lettered (retried or replayed since)."""
    deleted, _ = TaskFailure.objects.filter(
        dead_lettered_at__isnull=True, last_failed_at__lt=older_than
    ).delete()
    return deleted


def truncate_traceback(text: str) -> str:
    """Keep the start and the end of a long traceback (the end says what failed)."""
    if len(text) <= TRACEBACK_HEAD + TRACEBACK_TAIL:
        return text
    omitted = len(text) - TRACEBACK_HEAD - TRACEBACK_TAIL
    return "%s\n[... %d characters omitted ...]\n%s" % (
        text[:TRACEBACK_HEAD],
        omitted,
        text[-TRACEBACK_TAIL:],
    )


def _format_traceback(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    return "".join(traceback_module.format_exception(type(exc), exc, exc.__traceback__))


def jsonable(value):
    """``value`` as JSON would give it back (anything JSON lacks as its text)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)
