"""The operator console's dead-letter pages: what a read-only user sees, what an operator
does, and the record of it, on real dead letters from a real worker."""

import re
from datetime import timedelta

from apps.delivery.models import OperatorAction, TaskFailure
from tests.delivery.dead_letters.conftest import staff

URL = "/admin/dead-letters/"


def test_a_read_only_user_sees_filters_and_reads_but_cannot_act(client, dead_letters):
    payments, results = dead_letters
    client.force_login(staff("viewer", "view_dead_letters"))
    # every dead letter, with its arguments (which payment) and the permanent one marked
    page = client.get(URL).content.decode()
    for payment, result in zip(payments, results, strict=False):
        assert result.id in page
        assert str(payment.id) in page
    assert results[2].id in page
    assert page.count(">permanent</span>") == 1
    assert 'name="action"' not in page  # no buttons
    # filtered by exception, and searched in the arguments
    outage = client.get(URL, {"exception": "GatewayUnavailable"}).content.decode()
    assert (results[0].id in outage, results[2].id in outage) == (True, False)
    found = client.get(URL, {"q": str(payments[1].id)}).content.decode()
    assert (results[0].id in found, results[1].id in found) == (False, True)
    # the detail page has the traceback and the raw message
    detail = client.get("%s%s/" % (URL, results[2].id)).content.decode()
    assert "Traceback" in detail
    assert "TypeError" in detail
    assert "&quot;body&quot;" in detail.split('id="raw-message"')[1]
    # and acting is refused
    assert client.post(URL, {"action": "replay", "id": results[0].id}).status_code == 403


def test_an_operator_replays_all_matching_after_confirming_and_it_is_recorded(
    broker, client, dead_letters
):
    _, results = dead_letters
    operator = staff("operator", "view_dead_letters", "operate_dead_letters")
    client.force_login(operator)
    # when: "replay all matching" with no filter
    confirm = client.post(URL, {"action": "replay:all"}).content.decode()
    # then: a confirmation that says how many, and which are permanent failures
    assert "<strong>3</strong> dead letter(s)" in confirm
    assert "1 of them failed permanently" in confirm
    assert broker.server.queue_length("dead_letter") == 3
    # when: confirmed without ticking the permanent ones
    client.post(URL, {"action": "replay", "all": "1", "confirmed": "1"})
    # then: the two transient failures went back to their queue, the decline stayed
    assert broker.server.queue_length("dead_letter") == 1
    assert broker.server.queue_length("default") == 2
    assert TaskFailure.objects.get(task_id=results[2].id).dead_lettered_at is not None
    (entry,) = OperatorAction.objects.all()
    assert (entry.username, entry.action, entry.count) == ("operator", "replay", 2)
    assert sorted(entry.letter_ids) == sorted([results[0].id, results[1].id])
    assert "operator" in client.get(URL).content.decode().split("Operator actions")[1]
    # when: the operator insists on the permanent one
    client.post(
        URL,
        {"action": "replay", "id": results[2].id, "confirmed": "1", "include_permanent": "1"},
    )
    assert broker.server.queue_length("dead_letter") == 0


def test_all_matching_means_the_letters_the_confirmation_counted(broker, client, dead_letters):
    _, results = dead_letters
    client.force_login(staff("operator", "view_dead_letters", "operate_dead_letters"))
    confirm = client.post(URL, {"action": "purge:all"}).content.decode()
    as_of = re.search(r'name="as_of" value="([^"]+)"', confirm).group(1)
    # when: confirmed as of a time before any of them was dead-lettered
    earliest = min(TaskFailure.objects.values_list("dead_lettered_at", flat=True))
    before = (earliest - timedelta(seconds=1)).isoformat()
    answer = client.post(
        URL, {"action": "purge", "all": "1", "confirmed": "1", "as_of": before}, follow=True
    )
    # then: none of them is taken, and nothing is recorded
    assert "no dead letter matches" in answer.content.decode()
    assert broker.server.queue_length("dead_letter") == 3
    assert not OperatorAction.objects.exists()
    # when: a replay of only the permanent failure, not ticked: nothing done, nothing recorded
    answer = client.post(
        URL, {"action": "replay", "id": results[2].id, "confirmed": "1"}, follow=True
    )
    assert "Nothing replayed." in answer.content.decode()
    assert not OperatorAction.objects.exists()
    # when: confirmed as of the confirmation page, all three go
    client.post(URL, {"action": "purge", "all": "1", "confirmed": "1", "as_of": as_of})
    assert broker.server.queue_length("dead_letter") == 0
    assert OperatorAction.objects.get().count == 3
    # and a time that is not one is refused
    bad = {"action": "purge", "all": "1", "confirmed": "1", "as_of": "yesterday"}
    assert client.post(URL, bad).status_code == 400


def test_the_admin_index_links_the_console_for_those_allowed(client, db):
    client.force_login(staff("viewer", "view_dead_letters", "view_outboxmessage"))
    index = client.get("/admin/").content.decode()
    assert URL in index
    pending = "/admin/delivery/outboxmessage/?sent_at__isempty=1"
    assert pending in index
    assert client.get(pending).status_code == 200
    client.force_login(staff("other"))
    assert URL not in client.get("/admin/").content.decode()
