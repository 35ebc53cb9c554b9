"""Checks of settings that Celery would otherwise accept in silence.

Celery ignores a setting it does not know, so a typo such as ``CELERY_TASK_ACKS_LAET``
would quietly switch a delivery guarantee off. ``manage.py check`` reports such a
setting (``conveyor.E001``), and the Celery app refuses to start with one
(:class:`apps.delivery.celery_overrides.app.ConveyorCelery`).
"""

from __future__ import annotations

from celery.app.defaults import SETTING_KEYS
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

#: The prefix of Celery settings in Django settings (``namespace="CELERY"``).
PREFIX = "CELERY_"
DOCS = "https://docs.celeryq.dev/en/stable/userguide/configuration.html"


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
