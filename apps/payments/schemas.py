"""What the payments API reads and writes, as schemas (their OpenAPI documentation too)."""

import enum
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from django.urls import reverse
from ninja import Field, Schema
from pydantic import BeforeValidator, ConfigDict, WithJsonSchema, field_validator

from .gateway import TOKENS
from .models import Payment

#: An amount: a string, so that no binary float rounds it, above zero, with up to 10
#: digits before the point and 2 after (the column's 12 digits).
AMOUNT = re.compile(r"^(?:[1-9][0-9]{0,9}(?:\.[0-9]{1,2})?|0\.(?:[1-9][0-9]?|0[1-9]))$")


def _amount(value):
    if not isinstance(value, str):
        raise ValueError('Send the amount as a string, such as "12.50".')
    if not AMOUNT.fullmatch(value):
        raise ValueError(
            "Use a positive amount with up to 10 digits before the point and 2 after, "
            'such as "12.50".'
        )
    return Decimal(value)


Amount = Annotated[
    Decimal,
    BeforeValidator(_amount),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": AMOUNT.pattern,
            "description": "A positive decimal string: up to 10 digits, then up to 2 decimals.",
            "examples": ["12.50"],
        }
    ),
]

#: An RFC 3339 time, with its offset (JSON Schema's ``date-time``).
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")


def _timestamp(value):
    if isinstance(value, datetime):
        return value
    if not (isinstance(value, str) and RFC3339.fullmatch(value)):
        raise ValueError("Use an RFC 3339 time with its offset, such as 2026-12-01T00:00:00Z.")
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError("Not a time this server can compare: %s." % exc) from None


Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]

#: An ISO 4217 currency code.
CURRENCY = re.compile(r"^[A-Z]{3}$")

Source = enum.StrEnum("Source", {token: token for token in TOKENS})
Source.__doc__ = "A gateway token: how the simulated gateway answers the charge."
Status = enum.StrEnum("Status", {value: value for value in Payment.Status.values})
Status.__doc__ = "Where a payment is: pending, processing, then processed or failed."


class PaymentCreate(Schema):
    """The body of ``POST /api/payments/``."""

    model_config = ConfigDict(extra="forbid")

    amount: Amount
    currency: str = Field(
        description="An ISO 4217 code: three capital letters.",
        examples=["EUR"],
        json_schema_extra={"pattern": CURRENCY.pattern},
    )
    source: Source = Field(Source.tok_ok, description=Source.__doc__)

    @field_validator("currency")
    @classmethod
    def currency_is_a_code(cls, value: str) -> str:
        if not CURRENCY.fullmatch(value):
            raise ValueError("Use a three-letter ISO 4217 code such as EUR.")
        return value


class PaymentAccepted(Schema):
    """A payment taken: it is processed in the background."""

    id: uuid.UUID
    status: Status
    url: str = Field(description="Where the payment's status is read.")


class PaymentOut(Schema):
    """A payment as the API shows it."""

    id: uuid.UUID
    url: str
    amount: Decimal
    currency: str
    source: str
    status: Status
    attempts: int = Field(description="Times processing started.")
    last_error: str = Field(description="Why the last attempt failed, if it did.")
    charge_id: str = Field(description="The gateway's id of the charge, once charged.")
    created_at: datetime
    updated_at: datetime
    processed_at: datetime | None

    @staticmethod
    def resolve_url(payment, context) -> str:
        if isinstance(payment, dict):
            return payment["url"]
        return payment_url(context["request"], payment.id)


class PaymentDetail(PaymentOut):
    """A payment, with the gateway ledger's count of its charges (never more than 1)."""

    charges: int = Field(description="Charges the gateway's ledger holds for this payment.")


class PaymentPage(Schema):
    """A page of payments, newest first."""

    results: list[PaymentOut]
    next: str | None = Field(description="The next page's URL; null on the last page.")


class PaymentListQuery(Schema):
    """The query of ``GET /api/payments/``: filters, and where the page starts."""

    status: Status | None = Field(None, description="Only payments with this status.")
    created_after: Timestamp | None = Field(
        None, description="Created at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z)."
    )
    created_before: Timestamp | None = Field(
        None, description="Created before this time (RFC 3339, e.g. 2026-12-01T00:00:00Z)."
    )
    page_size: int = Field(50, ge=1, le=200, description="Payments per page.")
    cursor: str | None = Field(None, description="Where the page starts: a page's `next`.")


def payment_url(request, payment_id) -> str:
    """The absolute URL of a payment's detail."""
    return request.build_absolute_uri(reverse("api:payment-detail", args=[payment_id]))
