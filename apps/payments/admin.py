from django.contrib import admin

from .models import GatewayRequest, Payment


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """Payments, to look at: they are created through the API (which enqueues their
    processing, where a payment added here would never be processed) and move on only
    through their task and the dead-letter tools; what was asked for never changes."""

    list_display = ["id", "amount", "currency", "source", "status", "attempts", "created_at"]
    list_filter = ["status", "currency", "source"]
    search_fields = ["id", "idempotency_key", "charge_id"]
    readonly_fields = [
        "id",
        "status",
        "attempts",
        "last_error",
        "charge_id",
        "created_at",
        "updated_at",
        "processed_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(GatewayRequest)
class GatewayRequestAdmin(admin.ModelAdmin):
    """The simulated gateway's ledger: written by the gateway only."""

    list_display = ["idempotency_key", "outcome", "charge_id", "amount", "currency", "created_at"]
    list_filter = ["outcome"]
    search_fields = ["idempotency_key", "charge_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
