"""The Celery application: ``celery -A config.celery worker`` / ``beat``."""

import os
import sys

from celery import Celery

from config.environment import exit_on_configuration_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
# A ConfigurationError raised while the settings load ends the process with one line.
sys.excepthook = exit_on_configuration_error


class ConveyorCelery(Celery):
    """Celery that refuses to configure itself from a misspelt ``CELERY_*`` setting."""

    def prepare_config(self, c):
        # Runs once, when the configuration is first read; unlike a signal receiver,
        # an exception raised here stops the process.
        from django.conf import settings

        from config.checks import check_celery_settings

        check_celery_settings(settings)
        return super().prepare_config(c)


# Every task is a DeliveryTask: retry policy, failure classification, idempotency keys.
app = ConveyorCelery("conveyor", task_cls="apps.delivery.task_base:DeliveryTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Logging set-up and correlation ids for every process that loads the app.
import apps.delivery.signals  # noqa: E402, F401
from apps.delivery.bootsteps import WorkerHeartbeat  # noqa: E402

app.steps["consumer"].add(WorkerHeartbeat)
