"""Checks of settings that Celery would otherwise accept in silence.

Celery ignores a setting it does not know, so a typo such as ``CELERY_TASK_ACKS_LAET``
would quietly switch a delivery guarantee off. ``manage.py check`` reports such a
setting (``conveyor.E001``), and the Celery app refuses to start with one
(:class:`apps.delivery.celery_overrides.app.ConveyorCelery`).

A misspelt environment variable (``CELERY_BROKER_ULR``) is as quiet: its setting keeps
its default. ``manage.py check`` (and runserver, migrate) warns of one
(``conveyor.W001``); a worker or beat logs the same warning when it starts
(:mod:`apps.delivery.celery_overrides.signals`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping

from celery.app.defaults import SETTING_KEYS
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

#: The prefix of Celery settings in Django settings (``namespace="CELERY"``).
PREFIX = "CELERY_"
DOCS = "https://docs.celeryq.dev/en/stable/userguide/configuration.html"

#: Variables Celery reads itself, or sets in a worker's environment for its children.
CELERY_OWN_VARIABLES = frozenset(
    {
        "CELERY_BENCH",
        "CELERY_BENCH_EVERY",
        "CELERY_BROKER_READ_URL",
        "CELERY_BROKER_WRITE_URL",
        "CELERY_CONFIG_MODULE",
        "CELERY_CUSTOM_WORKER_POOL",
        "CELERY_LOADER",
        "CELERY_LOG_FILE",
        "CELERY_LOG_LEVEL",
        "CELERY_LOG_REDIRECT",
        "CELERY_LOG_REDIRECT_LEVEL",
        "CELERY_RDB_HOST",
        "CELERY_RDB_PORT",
        "CELERY_SKIP_CHECKS",
        "CELERY_TRACE_APP",
    }
)
#: How alike (difflib's ratio) an unread variable's name must be to a read one to be
#: taken for its misspelling: ``CELERY_BROKER_ULR`` scores 0.94 against
#: ``CELERY_BROKER_URL``, RabbitMQ's own ``RABBITMQ_NODE_PORT`` 0.84 against
#: ``RABBITMQ_PORT``.
MISSPELLING_CUTOFF = 0.85


def unknown_celery_settings(settings) -> list[str]:
    """Return the ``CELERY_*`` names in ``settings`` that are not Celery settings."""
    return sorted(
        name
        for name in dir(settings)
        if name.startswith(PREFIX) and name[len(PREFIX) :].lower() not in SETTING_KEYS
    )


def check_celery_settings(settings) -> None:
    """Raise ImproperlyConfigured if a ``CELERY_*`` setting is not a Celery setting."""
    unknown = unknown_celery_settings(settings)
    if unknown:
        raise ImproperlyConfigured(
            "not a Celery setting, so Celery would ignore it: %s. Check the spelling against %s"
            % (", ".join(unknown), DOCS)
        )


def celery_settings_check(app_configs, **kwargs):
    """A ``CELERY_*`` setting that Celery does not know is an error (Celery ignores it)."""
    from django.conf import settings

    return [
        checks.Error(
            "%s is not a Celery setting; Celery would ignore it." % name,
            hint="Check the spelling: %s" % DOCS,
            id="conveyor.E001",
        )
        for name in unknown_celery_settings(settings)
    ]


def unread_variables_check(app_configs, **kwargs):
    """A set environment variable that looks like a misspelt Conveyor or Celery variable
    is a warning: the setting it was meant for keeps its default."""
    return [
        checks.Warning(
            message,
            hint="Every variable Conveyor reads is listed in .env.example.",
            id="conveyor.W001",
        )
        for message in unread_variable_warnings()
    ]


def unread_variable_warnings(
    variables: Mapping[str, str] | None = None, *, known: Iterable[str] | None = None
) -> list[str]:
    """Return a warning for each set variable that looks meant for Conveyor or Celery
    but that neither reads.

    A variable is reported when its name, in upper case, is close to one that Conveyor
    reads (the warning names it), or when it starts with ``CELERY_`` and Celery does
    not read it either. ``variables`` defaults to the environment, ``known`` to the
    ``ENVIRONMENT_VARIABLES`` setting: the names the settings have read so far, so
    call this once they are loaded.
    """
    from django.conf import settings

    variables = os.environ if variables is None else variables
    known = set(settings.ENVIRONMENT_VARIABLES if known is None else known)
    unread = sorted(name for name in variables if name not in known | CELERY_OWN_VARIABLES)
    if any(name.upper().startswith(PREFIX) for name in unread):
        celery = celery_command_line_variables()
        unread = [name for name in unread if name not in celery]
    warnings = []
    for name in unread:
        meant = _misspelt(name, known)
        if meant:
            warnings.append("%s is set but not read; did you mean %s?" % (name, meant))
        elif name.upper().startswith(PREFIX):
            warnings.append(
                "%s is set but not read: neither Conveyor nor Celery reads such a variable." % name
            )
    return warnings


def celery_command_line_variables() -> set[str]:
    """The variables that set options of the ``celery`` command: ``CELERY_APP``,
    ``CELERY_WORKER_CONCURRENCY`` and the like (click's ``auto_envvar_prefix``)."""
    from celery.bin.celery import celery

    commands = [("", celery)] + [
        ("%s_" % name.upper(), cmd) for name, cmd in celery.commands.items()
    ]
    return {
        PREFIX + command + word.upper().replace("-", "_")
        for command, cmd in commands
        for param in cmd.params
        for word in (param.name, param.envvar)
        if word
    }


def _misspelt(name: str, known: set[str]) -> str | None:
    """The known name that ``name`` misspells, if any: one alike as a whole, beginning
    with the same letter (``XDEBUG`` is no misspelling of ``DEBUG``)."""
    upper = name.upper()
    if upper in known:
        return upper
    candidates = [known_name for known_name in known if known_name[:1] == upper[:1]]
    close = difflib.get_close_matches(upper, candidates, n=1, cutoff=MISSPELLING_CUTOFF)
    return close[0] if close else None
