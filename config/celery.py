"""The Celery application: ``celery -A config.celery worker`` / ``beat``."""

import os
import sys

from apps.delivery.celery_overrides.app import ConveyorCelery
from config.environment import exit_on_configuration_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
# A configuration error raised while the settings load ends the process with one line.
sys.excepthook = exit_on_configuration_error

# Every task is a DeliveryTask: retry policy, failure classification, idempotency keys.
app = ConveyorCelery("conveyor", task_cls="apps.delivery.task_base:DeliveryTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Logging set-up and correlation ids for every process that loads the app.
import apps.delivery.celery_overrides.signals  # noqa: E402, F401
from apps.delivery.celery_overrides import database  # noqa: E402

# Database connections live as long as CONN_MAX_AGE says, across tasks.
database.install()
from apps.delivery.celery_overrides.bootsteps import OutboxRelay, WorkerHeartbeat  # noqa: E402

app.steps["consumer"].add(WorkerHeartbeat)
app.steps["worker"].add(OutboxRelay)
