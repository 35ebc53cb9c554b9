"""Start-up checks of settings that Celery would otherwise accept in silence."""

from __future__ import annotations

from celery.app.defaults import SETTING_KEYS

from config.environment import ConfigurationError

#: The prefix of Celery settings in Django settings (``namespace="CELERY"``).
PREFIX = "CELERY_"


def unknown_celery_settings(settings) -> list[str]:
    """Return the ``CELERY_*`` names in ``settings`` that are not Celery settings.

    Celery ignores a setting it does not know, so a typo such as
    ``CELERY_TASK_ACKS_LAET`` would quietly switch a delivery guarantee off.
    """
    return sorted(
        name
        for name in dir(settings)
        if name.startswith(PREFIX) and name[len(PREFIX) :].lower() not in SETTING_KEYS
    )


def check_celery_settings(settings) -> None:
    """Raise ConfigurationError if a ``CELERY_*`` setting is not a Celery setting."""
    unknown = unknown_celery_settings(settings)
    if unknown:
        raise ConfigurationError(
            "not a Celery setting, so Celery would ignore it: %s. Check the spelling against "
            "https://docs.celeryq.dev/en/stable/userguide/configuration.html" % ", ".join(unknown)
        )
