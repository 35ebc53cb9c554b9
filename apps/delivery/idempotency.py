"""Idempotency keys: run a unit of work once, however often its task is delivered.

A task claims its key before it runs. The claim is a row with a unique key, taken
under a row lock, so it holds across worker processes and hosts on PostgreSQL and
SQLite alike:

- no record: the task runs (ACQUIRED);
- a record that is ``done``: the work happened already and the task is skipped (DONE);
- a record whose claim has not run out: another delivery is on it and this one is
  skipped (BUSY); the running one's message, acknowledged late, comes back if it dies;
- a record held by the same task id when the broker marks the message *redelivered*
  (its worker died mid-task) or when this is a later attempt (a retry), or a record
  whose claim ran out: the task takes it over (ACQUIRED).

A failed run deletes its record, so its retry (published by the failed run) or a
replay claims the key afresh; if the deletion failed, the retry takes the record over.

Any task uses it by naming a key; see ``DeliveryTask.idempotency_key``.
"""

from __future__ import annotations

import enum
from datetime import timedelta

from django.db import connections, models, router, transaction
from django.utils import timezone

from .models import IdempotencyRecord


class Claim(enum.Enum):
    ACQUIRED = "acquired"
    DONE = "done"
    BUSY = "busy"


def idempotency_claim(
    *,
    key: str,
    owner: str,
    lease: timedelta,
    attempt: int = 0,
    task_name: str = "",
    redelivered: bool = False,
) -> Claim:
    """Claim ``key`` for ``owner`` (a task id; ``attempt``: its retries so far) for ``lease``.

    See the module docstring for the rules.
    """
    now = timezone.now()
    claim = {
        "owner": owner,
        "attempt": attempt,
        "task_name": task_name,
        "locked_until": now + lease,
    }
    # The usual case, a key seen for the first time, is one statement.
    while not _insert(key=key, now=now, **claim):
        with transaction.atomic():
            record = IdempotencyRecord.objects.select_for_update().filter(key=key).first()
            if record is None:
                continue  # released by its holder meanwhile: claim it afresh
            if record.state == IdempotencyRecord.State.DONE:
                return Claim.DONE
            taking_over = record.owner == owner and (redelivered or attempt > record.attempt)
            if not taking_over and record.locked_until and record.locked_until > now:
                return Claim.BUSY
            for name, value in claim.items():
                setattr(record, name, value)
            record.save(update_fields=list(claim))
            return Claim.ACQUIRED
    return Claim.ACQUIRED


def _insert(*, key: str, now, **claim) -> bool:
    """``INSERT ... ON CONFLICT (key) DO NOTHING`` (PostgreSQL, SQLite >= 3.24): whether
    the record is new. One round trip, where ``get_or_create`` under a row lock takes
    five (a transaction, a locking read, a savepoint around the insert)."""
    values = {"key": key, "state": IdempotencyRecord.State.RUNNING, "created_at": now, **claim}
    meta = IdempotencyRecord._meta
    connection = connections[router.db_for_write(IdempotencyRecord)]
    quote = connection.ops.quote_name
    # Names from the model, quoted; every value a parameter.
    sql = "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO NOTHING" % (  # noqa: S608
        quote(meta.db_table),
        ", ".join(quote(meta.get_field(name).column) for name in values),
        ", ".join(["%s"] * len(values)),
        quote(meta.get_field("key").column),
    )
    params = [meta.get_field(name).get_db_prep_save(v, connection) for name, v in values.items()]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def idempotency_holder(*, key: str) -> str:
    """Return the id of the task that holds or completed ``key`` ("" if none)."""
    return IdempotencyRecord.objects.filter(key=key).values_list("owner", flat=True).first() or ""


def idempotency_complete(*, key: str, owner: str) -> None:
    """Mark the work behind ``key`` done: later deliveries are skipped."""
    IdempotencyRecord.objects.filter(key=key, owner=owner).update(
        state=IdempotencyRecord.State.DONE, completed_at=timezone.now(), locked_until=None
    )


def idempotency_release(*, key: str, owner: str) -> None:
    """Give ``key`` up after a failed run, so a retry or a replay can claim it."""
    IdempotencyRecord.objects.filter(
        key=key, owner=owner, state=IdempotencyRecord.State.RUNNING
    ).delete()


def idempotency_expire(*, older_than) -> int:
    """Delete records finished before ``older_than``, and claims that ran out by then."""
    done = models.Q(state=IdempotencyRecord.State.DONE, completed_at__lt=older_than)
    abandoned = models.Q(state=IdempotencyRecord.State.RUNNING, locked_until__lt=older_than)
    deleted, _ = IdempotencyRecord.objects.filter(done | abandoned).delete()
    return deleted
