from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    """Delivery machinery shared by every task: retries, idempotency, dead letters, logging."""

    name = "apps.delivery"
