"""Durable records of the delivery machinery."""

from django.db import models


class IdempotencyRecord(models.Model):
    """One unit of work, named by its idempotency key: who runs it, and whether it is done.

    While a task runs, the record names the task (``owner``) and how long its claim
    holds (``locked_until``). Once the task has finished, the record is ``done`` and
    later deliveries with the same key are skipped. A failed run deletes its record,
    so a retry or a replay can claim the key again.
    """

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    key = models.CharField(max_length=255, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    #: Id of the task that holds or completed the key, and its retries at the time.
    owner = models.CharField(max_length=255)
    attempt = models.PositiveIntegerField(default=0)
    task_name = models.CharField(max_length=255, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["state", "completed_at"])]

    def __str__(self):
        return "%s (%s)" % (self.key, self.state)


class TaskFailure(models.Model):
    """What went wrong with a task (or a message no task could take), keyed by task id.

    The broker keeps a dead-lettered message as it was sent (RabbitMQ only adds its
    ``x-death`` header); this row keeps the failure facts beside it for the operator
    tools. It is written at every failure, so it also tells when the first one
    happened and how many retries followed, and it goes away when the task succeeds.
    """

    class Reason(models.TextChoices):
        FAILED = "failed", "Task failed"
        UNKNOWN_TASK = "unknown_task", "Unknown task name"
        INVALID_MESSAGE = "invalid_message", "Malformed task message"
        UNDECODABLE = "undecodable", "Body refused or undecodable"
        DELIVERY_LIMIT = "delivery_limit", "Delivered too often without finishing"

    task_id = models.CharField(max_length=255, unique=True)
    task_name = models.CharField(max_length=255, blank=True)
    reason = models.CharField(max_length=20, choices=Reason.choices, default=Reason.FAILED)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    queue = models.CharField(max_length=255, blank=True)
    routing_key = models.CharField(max_length=255, blank=True)
    exception_type = models.CharField(max_length=255, blank=True)
    exception_message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    retries = models.PositiveIntegerField(default=0)
    correlation_id = models.CharField(max_length=255, blank=True)
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()
    #: When the failure became final and the message went to the dead-letter queue.
    dead_lettered_at = models.DateTimeField(null=True, blank=True, db_index=True)
    replays = models.PositiveIntegerField(default=0)
    replayed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return "%s %s: %s" % (self.task_name or "?", self.task_id, self.exception_type)
