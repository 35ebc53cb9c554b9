"""The admin shows payments and the gateway's ledger, and changes neither."""

from decimal import Decimal

import pytest

from apps.payments.models import GatewayRequest, Payment

pytestmark = pytest.mark.django_db


def test_a_payment_cannot_be_added_in_the_admin(admin_client):
    assert admin_client.get("/admin/payments/payment/add/").status_code == 403


def test_a_payments_details_cannot_be_changed_in_the_admin(admin_client, make_payment):
    # given
    payment = make_payment(status=Payment.Status.AWAITING_OPERATOR)
    url = "/admin/payments/payment/%s/change/" % payment.id
    # when
    page = admin_client.get(url)
    admin_client.post(url, {"amount": "99999.00", "currency": "USD", "source": "tok_ok"})
    # then the page is a view, and nothing changed
    assert page.status_code == 200
    assert b'name="amount"' not in page.content
    payment.refresh_from_db()
    assert (payment.amount, payment.currency) == (Decimal("12.50"), "EUR")


def test_gateway_ledger_rows_cannot_be_added_or_changed(admin_client):
    row = GatewayRequest.objects.create(
        idempotency_key="k",
        amount=Decimal("1.00"),
        currency="EUR",
        source="tok_ok",
        outcome=GatewayRequest.Outcome.CHARGED,
    )
    assert admin_client.get("/admin/payments/gatewayrequest/add/").status_code == 403
    page = admin_client.get("/admin/payments/gatewayrequest/%d/change/" % row.id)
    assert b'name="amount"' not in page.content
