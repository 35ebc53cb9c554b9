"""The payments HTTP API: creating, reading and listing payments."""

import base64
import json
from datetime import timedelta
from decimal import Decimal

import pytest

from apps.payments import gateway
from apps.payments.models import Payment

pytestmark = pytest.mark.django_db

URL = "/api/payments/"


def post(client, body, **headers):
    return post_to(client, URL, body, **headers)


def post_to(client, url, body, **headers):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data, content_type="application/json", headers=headers)


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


def test_source_is_optional(client):
    response = post(client, {"amount": "12.5", "currency": "USD"})
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
    assert "Idempotency-Key" in response.json()["detail"]
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
        ({"amount": 12.5, "currency": "EUR"}, {"amount"}),
        ({"amount": "0.00", "currency": "EUR"}, {"amount"}),
        ({"amount": "1e2", "currency": "EUR"}, {"amount"}),
        ({"amount": "12345678901", "currency": "EUR"}, {"amount"}),
        ({"amount": "1", "currency": "euro"}, {"currency"}),
        ({"amount": "1", "currency": "EUR", "source": "tok_visa"}, {"source"}),
        ({"amount": "1", "currency": "EUR", "cvv": "123"}, {"cvv"}),
    ],
)
def test_invalid_input_is_a_400_naming_each_bad_field(client, body, fields):
    response = post(client, body)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert set(response.json()["errors"]) == fields
    assert not Payment.objects.exists()


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', "", '{"amount": NaN}'])
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
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("delete", URL, "GET, HEAD, OPTIONS, POST"),
        ("put", URL, "GET, HEAD, OPTIONS, POST"),
        ("post", URL + "6f1c2a8e-0000-4000-8000-000000000000/", "GET, HEAD, OPTIONS"),
        ("put", URL + "6f1c2a8e-0000-4000-8000-000000000000/", "GET, HEAD, OPTIONS"),
        ("patch", URL + "6f1c2a8e-0000-4000-8000-000000000000/", "GET, HEAD, OPTIONS"),
        ("delete", URL + "6f1c2a8e-0000-4000-8000-000000000000/", "GET, HEAD, OPTIONS"),
    ],
)
def test_a_wrong_method_is_a_405_naming_the_allowed_ones(client, method, url, allowed):
    response = getattr(client, method)(url)
    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert "not allowed" in response.json()["detail"]


def test_options_answers_the_allowed_methods(client):
    response = client.options(URL)
    assert response.status_code == 204
    assert response["Allow"] == "GET, HEAD, OPTIONS, POST"


def test_head_answers_as_get_without_a_body(client, make_payment):
    payment = make_payment()
    response = client.head("%s%s/" % (URL, payment.id))
    assert response.status_code == 200
    assert response.content == b""


def test_a_post_without_the_trailing_slash_is_redirected_keeping_its_method(client):
    response = post_to(client, "/api/payments?x=1", {"amount": "1", "currency": "EUR"})
    assert response.status_code == 308
    assert response["Location"] == "/api/payments/?x=1"
    assert not Payment.objects.exists()


def test_the_list_pages_newest_first_with_a_cursor(client, make_payment):
    # given three payments
    made = [make_payment() for _ in range(3)]
    # when listed two at a time
    first = client.get(URL, {"page_size": 2}).json()
    second = client.get(first["next"]).json()
    # then every payment appears once, newest first
    ids = [item["id"] for item in first["results"] + second["results"]]
    assert ids == [str(payment.id) for payment in reversed(made)]
    assert second["next"] is None
    assert first["results"][0]["url"].endswith("/api/payments/%s/" % made[-1].id)


def test_the_list_filters_by_status_and_creation_time(client, make_payment):
    processed = make_payment(status=Payment.Status.PROCESSED)
    make_payment(status=Payment.Status.FAILED)
    body = client.get(URL, {"status": "processed"}).json()
    assert [item["id"] for item in body["results"]] == [str(processed.id)]

    later = (processed.created_at + timedelta(hours=1)).isoformat()
    assert client.get(URL, {"created_after": later}).json()["results"] == []
    assert len(client.get(URL, {"created_before": later}).json()["results"]) == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "0.5"}, "created_after"),
        ({"created_after": "2026-12-01"}, "created_after"),
        ({"created_before": "0001-01-01T00:00:00+05:00"}, "created_before"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "many"}, "page_size"),
        ({"cursor": "@@@"}, "cursor"),
    ],
)
def test_a_bad_filter_or_cursor_is_a_400_naming_it(client, query, field):
    response = client.get(URL, query)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_a_forged_cursor_is_a_400(client):
    forged = base64.b64encode(b"p=garbage").decode()
    response = client.get(URL, {"cursor": forged})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
