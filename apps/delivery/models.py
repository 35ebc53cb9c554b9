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
    #: Id of the task that holds or completed the key.
    owner = models.CharField(max_length=255)
    task_name = models.CharField(max_length=255, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["state", "completed_at"])]

    def __str__(self):
        return "%s (%s)" % (self.key, self.state)
