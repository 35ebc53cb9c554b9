"""Failure facts stay while their dead letter waits: they are what the operator sees."""

import pytest
from django.utils import timezone

from apps.delivery.models import TaskFailure

pytestmark = pytest.mark.django_db


def failure(task_id, *, dead_lettered):
    now = timezone.now()
    return TaskFailure.objects.create(
        task_id=task_id,
        task_name="apps.payments.tasks.process_payment",
        first_failed_at=now,
        last_failed_at=now,
        dead_lettered_at=now if dead_lettered else None,
    )


def test_a_dead_lettered_failure_cannot_be_deleted(admin_client):
    held = failure("t-held", dead_lettered=True)
    response = admin_client.post(
        "/admin/delivery/taskfailure/%d/delete/" % held.id, {"post": "yes"}
    )
    assert response.status_code == 403
    assert TaskFailure.objects.filter(id=held.id).exists()


def test_a_selection_holding_a_dead_lettered_failure_is_not_deleted(admin_client):
    # given
    held = failure("t-held", dead_lettered=True)
    done = failure("t-done", dead_lettered=False)
    action = {"action": "delete_selected", "post": "yes"}
    # when
    refused = admin_client.post(
        "/admin/delivery/taskfailure/", {**action, "_selected_action": [held.id, done.id]}
    )
    admin_client.post("/admin/delivery/taskfailure/", {**action, "_selected_action": [done.id]})
    # then the first selection was refused whole; the second deleted its finished failure
    assert refused.status_code == 403
    assert list(TaskFailure.objects.values_list("task_id", flat=True)) == ["t-held"]
