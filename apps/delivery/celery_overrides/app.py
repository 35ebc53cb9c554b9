"""The Celery application class: Celery that refuses to configure itself from a misspelt
``CELERY_*`` setting (:mod:`apps.delivery.checks`), and that takes Conveyor's result
backends where Celery's fall short (``RESULT_BACKENDS``).

``config/celery.py`` creates the project's app from it.
"""

from __future__ import annotations

from celery import Celery
from django.conf import settings

from ..checks import check_celery_settings
from . import RESULT_BACKENDS


class ConveyorCelery(Celery):
    def prepare_config(self, c):
        # Runs once, when the configuration is first read; unlike a signal receiver,
        # an exception raised here stops the process.
        check_celery_settings(settings)
        self.loader.override_backends = {**self.loader.override_backends, **RESULT_BACKENDS}
        return super().prepare_config(c)
