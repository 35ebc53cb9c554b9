"""The Celery application: ``celery -A config.celery worker`` / ``beat``."""

import os
import sys

from apps.delivery.logs.context import guess_process_role
from apps.delivery.metrics import directory as metrics_directory

# First of all: this process group's metrics directory, which prometheus_client reads
# when it is first imported (apps/delivery/metrics/directory.py). Every process that
# loads the project imports this module first (config/__init__.py).
metrics_directory.prepare(guess_process_role())

from apps.delivery.celery_overrides.app import ConveyorCelery  # noqa: E402
from config.environment import exit_on_configuration_error  # noqa: E402

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
from apps.delivery.celery_overrides.bootsteps import (  # noqa: E402
    OutboxRelay,
    WorkerHeartbeat,
    WorkerMetrics,
    WorkerReport,
)

app.steps["consumer"].add(WorkerHeartbeat)
app.steps["worker"].add(OutboxRelay)
app.steps["worker"].add(WorkerMetrics)
app.steps["worker"].add(WorkerReport)
