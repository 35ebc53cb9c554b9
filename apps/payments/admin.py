from django.contrib import admin

from .models import GatewayRequest, Payment


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
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


@admin.register(GatewayRequest)
class GatewayRequestAdmin(admin.ModelAdmin):
    list_display = ["idempotency_key", "outcome", "charge_id", "amount", "currency", "created_at"]
    list_filter = ["outcome"]
    search_fields = ["idempotency_key", "charge_id"]

    def has_change_permission(self, request, obj=None):
        return False
