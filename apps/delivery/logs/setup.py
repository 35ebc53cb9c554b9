"""Applying the ``LOGGING`` setting: Django's ``LOGGING_CONFIG`` and Celery's set-up call
:func:`configure`, so web, worker and beat log the same way."""

from __future__ import annotations

import logging
import logging.config
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .formats import JsonFormatter, JsonLines


def configure(config: dict) -> None:
    """Apply a ``LOGGING`` dict.

    Python warnings become log records. In JSON mode, lines that a server (web, worker,
    beat) prints to stdout or stderr become JSON records too, so that every line it
    writes is JSON. A management command's output is its interface and stays as it is,
    alone on stdout: its log records go to stderr (``deadletters replay --format json``
    pipes into ``jq``).
    """
    if serves():
        if is_json(config):
            JsonLines.install()
            sys.excepthook = _log_uncaught(sys.excepthook)
    else:
        config = _logging_to_stderr(config)
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def serves(argv: list[str] | None = None) -> bool:
    """Whether this process is a server (gunicorn, ``runserver``, Celery's worker or beat)
    rather than a management command."""
    argv = sys.argv if argv is None else argv
    if Path(argv[0]).name != "manage.py":
        return True
    return argv[1:2] == ["runserver"]


def is_json(config: dict) -> bool:
    """Return True if a ``LOGGING`` dict formats its records with :class:`JsonFormatter`."""
    factory = config.get("formatters", {}).get("default", {}).get("()", "")
    return factory == "%s.%s" % (JsonFormatter.__module__, JsonFormatter.__qualname__)


def _logging_to_stderr(config: dict) -> dict:
    handlers = {
        name: {**handler, "stream": "ext://sys.stderr"}
        if handler.get("stream") == "ext://sys.stdout"
        else handler
        for name, handler in config.get("handlers", {}).items()
    }
    return {**config, "handlers": handlers}


def _log_uncaught(previous):
    if getattr(previous, "logs_uncaught", False):
        return previous

    def hook(exc_type, exc, tb):
        # A configuration error is the previous hook's: one line, and exit.
        if issubclass(exc_type, ImproperlyConfigured | KeyboardInterrupt):
            return previous(exc_type, exc, tb)
        logging.getLogger("uncaught").critical(
            "Uncaught %s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb)
        )
        return None

    hook.logs_uncaught = True
    return hook
