from django.apps import AppConfig
from django.core import checks
from django.utils.module_loading import autodiscover_modules


class DeliveryConfig(AppConfig):
    """Delivery machinery shared by every task: retries, idempotency, dead letters, logging."""

    name = "apps.delivery"

    def ready(self):
        from django.contrib import admin

        from .checks import celery_settings_check, unread_variables_check

        # The admin's index links the operator console (apps/delivery/console.py).
        admin.site.index_template = "delivery/admin_index.html"

        checks.register(celery_settings_check)
        checks.register(unread_variables_check)
        # Every app's tasks module, in every process (Celery imports them only in workers),
        # so that a service can enqueue a task by name (apps.delivery.outbox).
        autodiscover_modules("tasks")
