"""Dead letters for the operator console's tests, and its users."""

import pytest
from django.contrib.auth.models import Permission, User

from apps.payments.tasks import process_payment
from apps.users.tasks import add
from tests.delivery.dead_letters.test_dead_letters import dead_lettered

#: The password of the users ``staff`` makes.
PASSWORD = "console-test-password"


def staff(username, *codenames):
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def dead_letters(broker, start_worker, make_payment):
    """Two payments out of retries during an outage (transient failures) and an add whose
    arguments cannot be added (a permanent one), all three in the dead-letter queue; no
    worker left running."""
    worker = start_worker(env={"GATEWAY_OUTAGE": "1", "TASK_MAX_RETRIES": "0"})
    payments = [make_payment(), make_payment()]
    results = [process_payment.delay(str(payment.id)) for payment in payments]
    results.append(add.delay("x", 1))
    dead_lettered(broker, 3)
    worker.stop()
    return payments, results
