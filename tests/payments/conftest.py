from decimal import Decimal

import pytest

from apps.payments.models import Payment


@pytest.fixture
def make_payment():
    """Create a payment row directly (no task is enqueued)."""

    def make(**fields) -> Payment:
        fields = {"amount": Decimal("12.50"), "currency": "EUR", "source": "tok_ok", **fields}
        return Payment.objects.create(**fields)

    return make
