"""The ``LOGGING`` setting, built from ``LOG_FORMAT`` and ``LOG_LEVEL``.

One configuration serves Django, Celery's worker and beat, gunicorn and the apps: every
logger to stdout, in one format, with the context of :mod:`apps.delivery.logs`.
"""

from __future__ import annotations

import logging

from apps.delivery.logs.context import ContextFilter
from apps.delivery.logs.formats import ConsoleFormatter, JsonFormatter
from config.environment import ConfigurationError

FORMATTERS = {"json": JsonFormatter, "console": ConsoleFormatter}


def logging_config(*, fmt: str, level: str) -> dict:
    """The ``LOGGING`` setting: every logger to stdout, in ``fmt``, at ``level``; one
    line per web request, the correlation middleware's."""
    if fmt not in FORMATTERS:
        raise ConfigurationError("LOG_FORMAT=%r: use json or console." % fmt)
    if not isinstance(logging.getLevelName(level), int):
        raise ConfigurationError(
            "LOG_LEVEL=%r: use DEBUG, INFO, WARNING, ERROR or CRITICAL." % level
        )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": _path(ContextFilter)},
            "no_request_lines": {"()": _path(DropRequestLines)},
            "no_client_errors": {"()": _path(DropClientErrors)},
        },
        "formatters": {"default": {"()": _path(FORMATTERS[fmt])}},
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
            # Django's warning for each 4xx answer ("Not Found: /x") repeats it too; a
            # 5xx, with its traceback, stays.
            "django.request": {
                "level": level,
                "handlers": [],
                "propagate": True,
                "filters": ["no_client_errors"],
            },
            # runserver's own line per request repeats the correlation middleware's
            # (apps/delivery/middleware.py), which carries the correlation id.
            "django.server": {
                "level": level,
                "handlers": [],
                "propagate": True,
                "filters": ["no_request_lines"],
            },
            "celery": {"level": level, "handlers": [], "propagate": True},
            # SQL at DEBUG would drown everything else.
            "django.db.backends": {"level": "INFO" if level == "DEBUG" else level},
        },
    }


class DropRequestLines(logging.Filter):
    """Drop the line runserver logs for each request it answered (``"GET / HTTP/1.1"
    200 1234``: its arguments and the request's ``status_code``), and keep its other
    messages, such as the one about a browser speaking HTTPS to it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (hasattr(record, "status_code") and record.args)


class DropClientErrors(logging.Filter):
    """Drop Django's line for a 4xx answer (``Not Found: /x``, with the record's
    ``status_code``): the request's own line says it already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not 400 <= getattr(record, "status_code", 0) < 500


def _path(cls: type) -> str:
    return "%s.%s" % (cls.__module__, cls.__qualname__)
