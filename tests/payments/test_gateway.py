"""The simulated gateway behaves like a real one, idempotency key included."""

from decimal import Decimal

import pytest

from apps.payments import gateway
from apps.payments.models import GatewayRequest

pytestmark = pytest.mark.django_db(transaction=True)


def charge(key="pay-1", source="tok_ok"):
    return gateway.charge(
        idempotency_key=key, amount=Decimal("9.99"), currency="EUR", source=source
    )


def test_a_repeated_charge_with_the_same_key_charges_nothing_more():
    first = charge()
    again = charge()
    assert not first.replayed
    assert again.replayed
    assert again.id == first.id
    assert gateway.charge_count(idempotency_key="pay-1") == 1
    assert GatewayRequest.objects.filter(idempotency_key="pay-1").count() == 2


def test_a_decline_is_permanent():
    with pytest.raises(gateway.CardDeclined) as excinfo:
        charge(source="tok_decline")
    assert isinstance(excinfo.value, gateway.PermanentError)
    assert gateway.charge_count(idempotency_key="pay-1") == 0


def test_a_flaky_source_fails_transiently_once_then_charges():
    with pytest.raises(gateway.GatewayUnavailable) as excinfo:
        charge(source="tok_flaky")
    assert isinstance(excinfo.value, gateway.TransientError)
    assert not charge(source="tok_flaky").replayed
    assert gateway.charge_count(idempotency_key="pay-1") == 1


def test_an_outage_fails_every_charge_transiently(settings):
    settings.GATEWAY_OUTAGE = True
    for _ in range(3):
        with pytest.raises(gateway.GatewayUnavailable, match="503"):
            charge()
    assert gateway.charge_count(idempotency_key="pay-1") == 0


def test_the_failure_rate_is_the_probability_of_a_transient_failure(settings):
    settings.GATEWAY_FAILURE_RATE = 1.0
    with pytest.raises(gateway.GatewayUnavailable, match="timed out"):
        charge()
    settings.GATEWAY_FAILURE_RATE = 0.0
    assert charge().id
