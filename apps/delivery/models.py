"""Durable records of the delivery machinery."""

import uuid

from django.conf import settings
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
    #: The exception is permanent (a declined card, a bug): a replay fails the same way
    #: unless something changed, so the operator console asks twice.
    permanent = models.BooleanField(default=False)
    #: When the retry of a transient failure is due (its countdown ends); empty once
    #: the failure is final.
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [
            ("view_dead_letters", "Can see dead letters and operator actions"),
            ("operate_dead_letters", "Can replay and purge dead letters"),
        ]

    def __str__(self):
        return "%s %s: %s" % (self.task_name or "?", self.task_id, self.exception_type)


class OperatorAction(models.Model):
    """What an operator did to dead letters: who, what, how many, when (the audit)."""

    class Action(models.TextChoices):
        REPLAY = "replay", "Replay"
        PURGE = "purge", "Purge"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    #: Kept when the user is deleted.
    username = models.CharField(max_length=150)
    action = models.CharField(max_length=10, choices=Action.choices)
    #: How many dead letters the action took.
    count = models.PositiveIntegerField()
    #: Their ids (task ids).
    letter_ids = models.JSONField(default=list)
    #: What the operator selected: ids, or a filter ("all matching").
    selection = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return "%s %s %d dead letter(s) at %s" % (
            self.username,
            self.action,
            self.count,
            self.created_at,
        )


class ProcessReport(models.Model):
    """What a worker or beat last said of itself, every few seconds, for the operator
    console: it reaches the console wherever the process runs (another host, another
    container), through the database they share."""

    class Role(models.TextChoices):
        WORKER = "worker", "Worker"
        BEAT = "beat", "Beat"

    role = models.CharField(max_length=10, choices=Role.choices)
    #: A worker's node name; beat's host name.
    node = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    #: A worker: concurrency, queues, the tasks running. Beat: each schedule entry's
    #: last and next run.
    state = models.JSONField(default=dict)
    started_at = models.DateTimeField()
    reported_at = models.DateTimeField(db_index=True)
    #: Set when the process stopped cleanly.
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["role", "node"], name="process_report_unique")
        ]

    def __str__(self):
        return "%s %s (pid %d)" % (self.role, self.node, self.pid)


class MinuteSample(models.Model):
    """One process's figures for one minute (UTC, to the minute): what its tasks did
    since its previous sample, and the queue depths it read."""

    minute = models.DateTimeField(db_index=True)
    #: ``worker:<node>`` or ``beat:<host>``.
    source = models.CharField(max_length=255)
    #: ``{task: {outcome: runs}}`` (outcomes as in ``conveyor_tasks_total``).
    tasks = models.JSONField(default=dict)
    #: ``{task: {upper bound: runs}}``: the enqueue -> start latency histogram's bucket
    #: increments, cumulative by bound as Prometheus keeps them.
    latency = models.JSONField(default=dict)
    #: ``{queue: messages ready}``.
    queues = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "source"], name="minute_sample_unique")
        ]

    def __str__(self):
        return "%s at %s" % (self.source, self.minute)


class OutboxMessage(models.Model):
    """A task message stored in the database transaction that enqueued it, until the
    broker has confirmed it (:mod:`apps.delivery.outbox`).

    Written with the business change, so both commit or neither does. Whoever publishes
    it first claims it for a moment (``claimed_until``), so that another relay leaves it
    alone meanwhile; once the broker confirmed it, it is ``sent``.
    """

    #: The order of publication.
    id = models.BigAutoField(primary_key=True)
    #: The task id of the message, the same however often it is published.
    task_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task_name = models.CharField(max_length=255)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    #: Message headers to send along (the correlation id of the request that enqueued it).
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    #: Until then, the publisher that claimed it has it; others leave it alone.
    claimed_until = models.DateTimeField(null=True, blank=True)
    #: Publications that failed, the last one's error, and when to try again.
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    #: When the broker confirmed it.
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The relay's question: what is not sent yet, oldest first.
            models.Index(
                fields=["id"], condition=models.Q(sent_at__isnull=True), name="outbox_unsent"
            ),
            models.Index(fields=["sent_at"], name="outbox_sent_at"),
        ]

    def __str__(self):
        return "%s[%s] (%s)" % (self.task_name, self.task_id, "sent" if self.sent_at else "pending")
