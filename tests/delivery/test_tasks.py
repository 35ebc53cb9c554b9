"""The delivery app's periodic work: the dead letters' retention."""

from datetime import timedelta

from django.utils import timezone

from apps.delivery.models import TaskFailure
from apps.delivery.tasks import expire_dead_letters
from apps.users.tasks import add
from tests.delivery.dead_letters.test_dead_letters import dead_lettered


def test_dead_letters_are_purged_only_past_a_configured_retention(broker, start_worker, settings):
    start_worker()
    add.delay("x", 1)
    dead_lettered(broker, 1)
    assert expire_dead_letters() == 0  # default: kept
    settings.DEAD_LETTER_RETENTION_DAYS = 1
    TaskFailure.objects.update(dead_lettered_at=timezone.now() - timedelta(days=2))
    assert expire_dead_letters() == 1
    assert broker.server.queue_length("dead_letter") == 0
