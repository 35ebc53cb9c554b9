"""Structured logs: one line per record, with the context of the process, request and task.

One ``LOGGING`` configuration (built by :func:`logging_config`, applied by
:func:`configure`) serves Django, Celery's worker and beat, and the apps:

- ``LOG_FORMAT=json``: every record is one JSON object on one line (python-json-logger),
  tracebacks included; ``console``: one readable line with the same fields;
- :class:`ContextFilter` adds, in one place, the process role (web, worker, beat), the
  current task's id, name, retries and worker, and the correlation id; and it masks
  passwords in URLs;
- in JSON mode, whatever is *printed* rather than logged (Celery's shutdown notice,
  beat's banner, a stray ``print``) is turned into a JSON line as well.

The correlation id comes from the web request (:mod:`apps.delivery.middleware`), travels
in the ``x_correlation_id`` header of every task message published while it is known
(:mod:`apps.delivery.signals`), and is the task's own inside a worker. A message
published with none (by beat, or a shell) gets a fresh one.

This module imports nothing from Django or ``config`` at import time: settings and the
gunicorn configuration use it.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import sys
import uuid
from collections.abc import Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

#: The message header that carries the correlation id from publisher to task.
CORRELATION_HEADER = "x_correlation_id"
#: user:password@ in a URL.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)
#: What the process is, for every record: web, worker or beat.
_role = {"value": None}
_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
FORMATS = ("json", "console")


# -- context ------------------------------------------------------------------------


def process_role() -> str:
    """web, worker or beat: from PROCESS_ROLE, else from the command line."""
    if _role["value"] is None:
        role = os.environ.get("PROCESS_ROLE")
        if not role:
            words = set(sys.argv[1:3] + sys.argv[3:5])
            role = "worker" if "worker" in words else "beat" if "beat" in words else "web"
        _role["value"] = role
    return _role["value"]


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
    """The correlation id of the current web request or task, if there is one."""
    value = _correlation_id.get()
    if value:
        return value
    request = current_task_request()
    return getattr(request, CORRELATION_HEADER, None) if request is not None else None


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


# -- formats ------------------------------------------------------------------------


class JsonFormatter(BaseJsonFormatter):
    """timestamp, level, logger, message, process, then the context and extra fields."""

    FIRST = (
        "timestamp",
        "level",
        "logger",
        "message",
        "process",
        "correlation_id",
        "task_id",
        "task_name",
        "retries",
        "worker",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("timestamp", True)
        kwargs.setdefault(
            "rename_fields", {"levelname": "level", "name": "logger", "process_role": "process"}
        )
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def add_fields(self, log_data, record, message_dict):
        super().add_fields(log_data, record, message_dict)
        # Celery adds its own copy of the traceback to "data"; exc_info has it already.
        data = log_data.get("data")
        if isinstance(data, dict) and record.exc_info and "traceback" in data:
            log_data["data"] = {k: v for k, v in data.items() if k != "traceback"}
        # The same fields first in every line, then whatever the record adds.
        fields = dict(log_data)
        log_data.clear()
        for name in self.FIRST:
            if name in fields:
                log_data[name] = fields.pop(name)
        log_data.update(fields)


class ConsoleFormatter(logging.Formatter):
    """One readable line: time, level, process, logger, message, then the context."""

    CONTEXT = ("task_name", "task_id", "retries", "correlation_id")

    def __init__(self, *args, **kwargs):
        super().__init__("%(asctime)s %(levelname)-7s %(process_role)-6s %(name)s: %(message)s")

    def formatTime(self, record, datefmt=None):
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.strftime("%H:%M:%S.") + "%03d" % record.msecs

    def format(self, record):
        record.__dict__.setdefault("process_role", process_role())
        line = super().format(record)
        context = " ".join(
            "%s=%s" % (name, record.__dict__[name])
            for name in self.CONTEXT
            if record.__dict__.get(name) not in (None, "")
        )
        if not context:
            return line
        head, newline, rest = line.partition("\n")
        return "%s  [%s]%s%s" % (head, context, newline, rest)


# -- configuration -------------------------------------------------------------------


def logging_config(*, fmt: str, level: str) -> dict:
    """The ``LOGGING`` setting: every logger to stdout, in ``fmt``, at ``level``."""
    from config.environment import ConfigurationError

    if fmt not in FORMATS:
        raise ConfigurationError("LOG_FORMAT=%r: use json or console." % fmt)
    if not isinstance(logging.getLevelName(level), int):
        raise ConfigurationError(
            "LOG_LEVEL=%r: use DEBUG, INFO, WARNING, ERROR or CRITICAL." % level
        )
    formatter = {"json": JsonFormatter, "console": ConsoleFormatter}[fmt]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "apps.delivery.log_context.ContextFilter"}},
        "formatters": {"default": {"()": "%s.%s" % (formatter.__module__, formatter.__qualname__)}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "default",
                "filters": ["context"],
            },
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            # Django's and Celery's loggers propagate to the root, one format for all.
            "django": {"level": level, "handlers": [], "propagate": True},
            "django.server": {"level": level, "handlers": [], "propagate": True},
            "celery": {"level": level, "handlers": [], "propagate": True},
            # SQL at DEBUG would drown everything else.
            "django.db.backends": {"level": "INFO" if level == "DEBUG" else level},
        },
    }


def configure(config: dict) -> None:
    """Apply a ``LOGGING`` dict (Django's ``LOGGING_CONFIG`` and Celery's set-up call this).

    Python warnings become log records. In JSON mode, lines printed to stdout or
    stderr become JSON records too, so that every line a process writes is JSON.
    """
    if is_json(config):
        JsonLines.install()
        sys.excepthook = _log_uncaught(sys.excepthook)
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def is_json(config: dict) -> bool:
    """Return True if a ``LOGGING`` dict built by :func:`logging_config` writes JSON."""
    factory = config.get("formatters", {}).get("default", {}).get("()", "")
    return factory == "%s.%s" % (JsonFormatter.__module__, JsonFormatter.__qualname__)


def _log_uncaught(previous):
    if getattr(previous, "logs_uncaught", False):
        return previous

    def hook(exc_type, exc, tb):
        from config.environment import ConfigurationError

        if issubclass(exc_type, ConfigurationError | KeyboardInterrupt):
            return previous(exc_type, exc, tb)
        logging.getLogger("uncaught").critical(
            "Uncaught %s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb)
        )
        return None

    hook.logs_uncaught = True
    return hook


class JsonLines:
    """Stands in for stdout or stderr in JSON mode.

    JSON lines pass through; any other line (a ``print``, Celery's shutdown notice)
    becomes a JSON record. Writes go straight to the file descriptor, without locks, as
    Celery prints from signal handlers.
    """

    def __init__(self, fd: int, *, level: str, logger: str):
        self.fd = fd
        self.level = level
        self.logger = logger
        self.pending = ""
        self.encoding = "utf-8"
        self.errors = "replace"

    @classmethod
    def install(cls) -> None:
        if isinstance(sys.stdout, cls):
            return
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout = sys.__stdout__ = cls(1, level="INFO", logger="stdout")
        sys.stderr = sys.__stderr__ = cls(2, level="WARNING", logger="stderr")

    def write(self, text: str) -> int:
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        if not line.strip():
            return
        if not (line.startswith("{") and _is_json(line)):
            line = json.dumps(
                {
                    "timestamp": datetime.now(tz=UTC).isoformat(),
                    "level": self.level,
                    "logger": self.logger,
                    "message": mask_passwords(line.rstrip()),
                    "process": process_role(),
                },
                ensure_ascii=False,
            )
        data = (line + "\n").encode("utf-8", "replace")
        while data:
            data = data[os.write(self.fd, data) :]

    def flush(self) -> None:
        if self.pending:
            line, self.pending = self.pending, ""
            self._emit(line)

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
