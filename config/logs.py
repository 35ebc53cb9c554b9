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
    """The ``LOGGING`` setting: every logger to stdout, in ``fmt``, at ``level``."""
    if fmt not in FORMATTERS:
        raise ConfigurationError("LOG_FORMAT=%r: use json or console." % fmt)
    if not isinstance(logging.getLevelName(level), int):
        raise ConfigurationError(
            "LOG_LEVEL=%r: use DEBUG, INFO, WARNING, ERROR or CRITICAL." % level
        )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": _path(ContextFilter)}},
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
            "django.server": {"level": level, "handlers": [], "propagate": True},
            "celery": {"level": level, "handlers": [], "propagate": True},
            # SQL at DEBUG would drown everything else.
            "django.db.backends": {"level": "INFO" if level == "DEBUG" else level},
        },
    }


def _path(cls: type) -> str:
    return "%s.%s" % (cls.__module__, cls.__qualname__)
