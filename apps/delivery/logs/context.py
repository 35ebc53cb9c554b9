"""The context of every log record: process role, task, and the correlation id.

:class:`ContextFilter` adds, in one place, the process role (web, worker, beat), the
current task's id, name, retries and worker, and the correlation id; and it masks
passwords in URLs.

The correlation id comes from the web request (:mod:`apps.delivery.middleware`), travels
in the ``x_correlation_id`` header of every task message published while it is known
(:mod:`apps.delivery.celery_overrides.signals`), and is the task's own inside a worker.
A message published with none (by beat, or a shell) gets a fresh one.

This module imports nothing from Django: settings and the gunicorn configuration use it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import uuid
from collections.abc import Mapping
from contextlib import contextmanager
from contextvars import ContextVar

#: The message header that carries the correlation id from publisher to task.
CORRELATION_HEADER = "x_correlation_id"
#: What a correlation id may be, whether an HTTP header or a message header brings it:
#: short, and nothing a log reader trips on (no spaces, no line breaks).
VALID_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")
#: user:password@ in a URL.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)
#: What the process is, for every record: web, worker or beat.
_role = {"value": None}
_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def process_role() -> str:
    """web, worker or beat: from PROCESS_ROLE, else from the command line (the first
    answer is kept)."""
    if _role["value"] is None:
        _role["value"] = guess_process_role()
    return _role["value"]


def guess_process_role() -> str:
    """web, worker or beat: from PROCESS_ROLE as the environment says now, else from the
    command line."""
    role = os.environ.get("PROCESS_ROLE")
    if not role:
        words = set(sys.argv[1:3] + sys.argv[3:5])
        role = "worker" if "worker" in words else "beat" if "beat" in words else "web"
    return role


def set_process_role(role: str) -> None:
    _role["value"] = role


def current_task_request():
    """The request of the task running in this process, or None."""
    from celery import current_task

    request = current_task.request if current_task else None
    if request is None or not request.id or request.called_directly:
        return None
    return request


def current_correlation_id() -> str | None:
    """The correlation id of the current web request or task, if there is a valid one."""
    value = _correlation_id.get()
    if value:
        return value
    request = current_task_request()
    return valid_correlation_id(getattr(request, CORRELATION_HEADER, None))


def valid_correlation_id(value) -> str | None:
    """``value`` if it is a valid correlation id, else None."""
    return value if isinstance(value, str) and VALID_CORRELATION_ID.match(value) else None


def mask_passwords(text: str) -> str:
    """Replace the password of every URL in ``text`` with ``***``."""
    return _URL_PASSWORD.sub(r"\g<scheme>***@", text) if "://" in text else text


def new_correlation_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def correlation(correlation_id: str):
    """Make ``correlation_id`` current within the block (a web request)."""
    token = _correlation_id.set(correlation_id)
    try:
        yield correlation_id
    finally:
        _correlation_id.reset(token)


class ContextFilter(logging.Filter):
    """Adds process role, task and correlation fields to every record; masks passwords."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_role = process_role()
        request = current_task_request()
        if request is not None:
            record.task_id = request.id
            record.task_name = request.task
            record.retries = request.retries
            record.worker = request.hostname
        elif isinstance(record.args, Mapping) and "id" in record.args and "name" in record.args:
            # Celery's own "Task %(name)s[%(id)s] received / succeeded" lines.
            record.task_id = record.args["id"]
            record.task_name = record.args["name"]
        correlation_id = current_correlation_id()
        if correlation_id:
            record.correlation_id = correlation_id
        message = record.getMessage()
        masked = mask_passwords(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True
