"""System checks (``manage.py check``) for settings Django cannot check itself."""

from django.conf import settings
from django.core import checks

from config.checks import unknown_celery_settings


@checks.register()
def celery_settings_check(app_configs, **kwargs):
    """A ``CELERY_*`` setting that Celery does not know is an error (Celery ignores it)."""
    return [
        checks.Error(
            "%s is not a Celery setting; Celery would ignore it." % name,
            hint="Check the spelling: https://docs.celeryq.dev/en/stable/userguide/configuration.html",
            id="conveyor.E001",
        )
        for name in unknown_celery_settings(settings)
    ]
