"""Failure classification: which exceptions are worth a retry, decided in one place.

A *transient* failure may not happen again (a timeout, a dropped connection, a 503):
the task is retried with backoff until its retries run out. A *permanent* failure will
happen again (a declined card, invalid input, a bug): the task is not retried. An
exception that says nothing about itself is permanent, so an unexpected error reaches
an operator at once instead of being repeated.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError


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
