"""The payments HTTP API."""

import json
from decimal import Decimal

import pytest

from apps.payments import gateway
from apps.payments.models import Payment

pytestmark = pytest.mark.django_db

URL = "/api/payments/"


def post(client, body, **headers):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(URL, data, content_type="application/json", headers=headers)


def test_post_creates_a_pending_payment_and_answers_202(client):
    response = post(client, {"amount": "12.50", "currency": "EUR", "source": "tok_ok"})
    assert response.status_code == 202
    body = response.json()
    payment = Payment.objects.get()
    assert body == {
        "id": str(payment.id),
        "status": "pending",
        "url": "http://testserver/api/payments/%s/" % payment.id,
    }
    assert response["Location"] == body["url"]
    assert (payment.amount, payment.currency, payment.source) == (Decimal("12.50"), "EUR", "tok_ok")


def test_source_is_optional_and_amount_may_be_a_json_number(client):
    response = post(client, {"amount": 12.5, "currency": "USD"})
    assert response.status_code == 202
    payment = Payment.objects.get()
    assert str(payment.amount) == "12.50"
    assert payment.source == "tok_ok"


def test_the_same_idempotency_key_returns_the_same_payment(client):
    first = post(client, {"amount": "3.00", "currency": "EUR"}, **{"Idempotency-Key": "abc-1"})
    again = post(client, {"amount": "3.00", "currency": "EUR"}, **{"Idempotency-Key": "abc-1"})
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1


def test_an_idempotency_key_reused_with_other_details_is_refused(client):
    post(client, {"amount": "3.00", "currency": "EUR"}, **{"Idempotency-Key": "abc-2"})
    response = post(client, {"amount": "4.00", "currency": "EUR"}, **{"Idempotency-Key": "abc-2"})
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["error"]
    assert Payment.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"amount", "currency"}),
        ({"amount": "0", "currency": "EUR"}, {"amount"}),
        ({"amount": "-5", "currency": "EUR"}, {"amount"}),
        ({"amount": "1.234", "currency": "EUR"}, {"amount"}),
        ({"amount": "ten", "currency": "EUR"}, {"amount"}),
        ({"amount": True, "currency": "EUR"}, {"amount"}),
        ({"amount": "1", "currency": "euro"}, {"currency"}),
        ({"amount": "1", "currency": "EUR", "source": "tok_visa"}, {"source"}),
        ({"amount": "1", "currency": "EUR", "cvv": "123"}, {"cvv"}),
    ],
)
def test_invalid_input_is_a_400_naming_each_bad_field(client, body, fields):
    response = post(client, body)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == fields
    assert not Payment.objects.exists()


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', ""])
def test_a_body_that_is_not_a_json_object_is_a_400(client, raw):
    response = post(client, raw)
    assert response.status_code == 400
    assert "body" in response.json()["errors"]


def test_a_bad_idempotency_key_is_a_400(client):
    response = post(client, {"amount": "1", "currency": "EUR"}, **{"Idempotency-Key": "x" * 256})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"Idempotency-Key"}


def test_get_shows_status_attempts_error_and_the_gateways_charge_count(client, make_payment):
    payment = make_payment(status=Payment.Status.PROCESSED, attempts=2, last_error="")
    gateway.charge(
        idempotency_key=str(payment.id), amount=payment.amount, currency="EUR", source="tok_ok"
    )
    response = client.get("%s%s/" % (URL, payment.id))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "processed"
    assert body["attempts"] == 2
    assert body["last_error"] == ""
    assert body["charges"] == 1


@pytest.mark.parametrize("payment_id", ["6f1c2a8e-0000-4000-8000-000000000000", "not-a-uuid"])
def test_an_unknown_payment_is_a_404(client, payment_id):
    response = client.get("%s%s/" % (URL, payment_id))
    assert response.status_code == 404
    assert "error" in response.json()


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("get", URL, "POST, OPTIONS"),
        ("delete", URL, "POST, OPTIONS"),
        ("post", URL + "6f1c2a8e-0000-4000-8000-000000000000/", "GET, HEAD, OPTIONS"),
        ("put", URL + "6f1c2a8e-0000-4000-8000-000000000000/", "GET, HEAD, OPTIONS"),
    ],
)
def test_a_wrong_method_is_a_405(client, method, url, allowed):
    response = getattr(client, method)(url)
    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert "not allowed" in response.json()["error"]
