from django.contrib import admin

from .models import IdempotencyRecord, OutboxMessage, TaskFailure


@admin.register(TaskFailure)
class TaskFailureAdmin(admin.ModelAdmin):
    """Failure facts. The dead letters themselves: /admin/dead-letters/."""

    list_display = [
        "task_id",
        "task_name",
        "reason",
        "exception_type",
        "retries",
        "dead_lettered_at",
        "replays",
    ]
    list_filter = ["reason", "task_name"]
    search_fields = ["task_id", "task_name", "correlation_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # A failure whose dead letter still waits is what the operator tools show of it:
        # it goes when the letter is replayed or purged (/admin/dead-letters/). The
        # admin refuses a selection that holds one, as a whole.
        if obj is not None and obj.dead_lettered_at is not None:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["key", "state", "owner", "task_name", "locked_until", "completed_at"]
    list_filter = ["state", "task_name"]
    search_fields = ["key", "owner"]

    def has_add_permission(self, request):
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Tasks enqueued on commit: pending until the broker has confirmed them."""

    list_display = ["id", "task_name", "task_id", "created_at", "attempts", "last_error", "sent_at"]
    list_filter = [("sent_at", admin.EmptyFieldListFilter), "task_name"]
    search_fields = ["task_id", "task_name"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
