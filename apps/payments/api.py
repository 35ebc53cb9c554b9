"""The payments HTTP API: ``/api/payments/`` (config/api.py mounts it).

Thin: it validates input against the schemas, calls the services and selectors, and
answers. Every error is a problem (apps/api/problems.py).
"""

import uuid
from datetime import datetime

from django.http import JsonResponse
from ninja import Header, Query, Router

from apps.api.pagination import InvalidCursor, cursor_decode, cursor_encode, page_url
from apps.api.problems import Problem, problem

from . import selectors, services
from .schemas import (
    PaymentAccepted,
    PaymentCreate,
    PaymentDetail,
    PaymentListQuery,
    PaymentPage,
    payment_url,
)

router = Router(tags=["payments"])

#: The longest Idempotency-Key accepted (the column's length).
KEY_MAX_LENGTH = 255


@router.post(
    "/",
    response={202: PaymentAccepted, 400: Problem, 413: Problem, 422: Problem},
    summary="Create a payment",
    operation_id="payment_create",
    url_name="payment-collection",
)
def payment_create(
    request,
    payload: PaymentCreate,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=KEY_MAX_LENGTH,
        pattern=r"^[ -~]+$",
        description="The same key again returns the same payment instead of a second one.",
    ),
):
    """Create a payment and process it in the background (answers ``202``).

    The same ``Idempotency-Key`` with the same details returns the first payment (header
    ``Idempotent-Replayed: true``); with other details it is a ``422``.
    """
    try:
        payment, created = services.payment_create(
            amount=payload.amount,
            currency=payload.currency,
            source=str(payload.source),
            idempotency_key=idempotency_key,
        )
    except services.IdempotencyKeyReused as exc:
        return problem(422, str(exc))
    accepted = PaymentAccepted(
        id=payment.id, status=payment.status, url=payment_url(request, payment.id)
    )
    response = JsonResponse(accepted.model_dump(mode="json"), status=202)
    response["Location"] = accepted.url
    if not created:
        response["Idempotent-Replayed"] = "true"
    return response


@router.get(
    "/",
    response={200: PaymentPage, 400: Problem},
    summary="List payments",
    operation_id="payment_list",
    url_name="payment-list",
)
def payment_list(request, query: Query[PaymentListQuery]):
    """Payments, newest first, a page at a time: ``next`` is the next page's URL."""
    try:
        after = _position(query.cursor)
    except InvalidCursor as exc:
        return problem(400, str(exc), errors={"cursor": [str(exc)]})
    payments = selectors.payment_list(
        status=query.status,
        created_after=query.created_after,
        created_before=query.created_before,
        after=after,
        limit=query.page_size + 1,
    )
    page = payments[: query.page_size]
    last = page[-1] if len(payments) > query.page_size else None
    return {
        "results": page,
        "next": page_url(request, cursor_encode(last.created_at.isoformat(), str(last.id)))
        if last
        else None,
    }


@router.get(
    "/{payment_id}/",
    response={200: PaymentDetail, 404: Problem},
    summary="Read a payment",
    operation_id="payment_detail",
    url_name="payment-detail",
)
def payment_detail(request, payment_id: uuid.UUID):
    """A payment's status, attempts, last error, and the gateway's count of its charges."""
    detail = selectors.payment_detail(payment_id=payment_id)
    if detail is None:
        return problem(404, "No payment %s." % payment_id)
    return {**detail, "url": payment_url(request, payment_id)}


def _position(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The creation time and id of the payment a cursor names."""
    if not cursor:
        return None
    created_at, payment_id = cursor_decode(cursor, size=2)
    try:
        return datetime.fromisoformat(created_at), uuid.UUID(payment_id)
    except ValueError:
        raise InvalidCursor("Not a cursor this API made: use a page's `next`.") from None
