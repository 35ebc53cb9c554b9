"""perform_cleanup: real housekeeping of the rows that outlived their retention."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from apps.common import services
from apps.delivery.idempotency import Claim, idempotency_claim, idempotency_complete
from apps.delivery.models import IdempotencyRecord, OutboxMessage, TaskFailure


@pytest.mark.django_db(transaction=True)
def test_cleanup_removes_what_outlived_its_retention_and_keeps_the_rest():
    now = timezone.now()
    old, recent = now - timedelta(days=40), now - timedelta(hours=1)
    Session.objects.create(session_key="old", session_data="", expire_date=old)
    Session.objects.create(session_key="new", session_data="", expire_date=now + timedelta(days=1))
    for key, completed in (("done:old", old), ("done:new", recent)):
        assert idempotency_claim(key=key, owner=key, lease=timedelta(minutes=5)) is Claim.ACQUIRED
        idempotency_complete(key=key, owner=key)
        IdempotencyRecord.objects.filter(key=key).update(completed_at=completed)
    for task_id, dead in (("retried-long-ago", None), ("waiting", old)):
        TaskFailure.objects.create(
            task_id=task_id, first_failed_at=old, last_failed_at=old, dead_lettered_at=dead
        )
    for task_name, sent in (("sent-long-ago", old), ("sent-just-now", recent), ("unsent", None)):
        OutboxMessage.objects.create(task_name=task_name, sent_at=sent)
    # when
    counts = services.cleanup_run()
    # then
    assert counts == {
        "expired_sessions": 1,
        "idempotency_records": 1,
        "failure_facts": 1,
        "outbox_messages": 1,
    }
    assert list(Session.objects.values_list("session_key", flat=True)) == ["new"]
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["done:new"]
    assert list(TaskFailure.objects.values_list("task_id", flat=True)) == ["waiting"]
    assert sorted(OutboxMessage.objects.values_list("task_name", flat=True)) == [
        "sent-just-now",
        "unsent",
    ]
