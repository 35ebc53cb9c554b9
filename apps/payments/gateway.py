"""The payment gateway boundary, and a simulated gateway that behaves like a real one.

``charge()`` is the one call the rest of the code makes. Like a real provider it takes
an idempotency key: a second charge with a key that was charged already returns the
first charge and charges nothing. Its ledger (:class:`GatewayRequest`) records every
request, and so shows how many charges a payment really got.

Controls, for demos, tests and operators (no code changes):

- the payment's ``source``: ``tok_ok`` succeeds, ``tok_decline`` is a permanent decline,
  ``tok_flaky`` fails transiently on its first request and then succeeds;
  ``tok_crash`` kills the process that calls the gateway, as a crashing driver would
  (a poison message: its task kills its worker on every delivery);
- ``GATEWAY_OUTAGE=1``: every request fails transiently (the gateway is down);
- ``GATEWAY_FAILURE_RATE``: probability that a request fails transiently;
- ``GATEWAY_LATENCY_MS``: how long the gateway takes to answer. It accepts the charge
  first and answers afterwards, as real gateways do, so a worker that dies while it
  waits has charged the card without knowing it.

The ledger write commits on its own, outside the caller's transaction: call ``charge()``
outside ``transaction.atomic()``, as one calls any external service.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.delivery.failures import PermanentError, TransientError

from .models import GatewayRequest

logger = logging.getLogger(__name__)

#: Test tokens the simulated gateway knows.
TOKENS = ("tok_ok", "tok_decline", "tok_flaky", "tok_crash")


class GatewayError(Exception):
    """The gateway did not charge."""


class GatewayUnavailable(GatewayError, TransientError):
    """A timeout or a 5xx answer: the same request may succeed later."""


class CardDeclined(GatewayError, PermanentError):
    """The card was declined: asking again will not help."""


@dataclass(frozen=True)
class Charge:
    id: str
    idempotency_key: str
    #: True if this request was a repeat and charged nothing new.
    replayed: bool


def charge(*, idempotency_key: str, amount: Decimal, currency: str, source: str) -> Charge:
    """Charge ``amount`` to ``source`` once per ``idempotency_key``.

    Raises :class:`GatewayUnavailable` (transient) or :class:`CardDeclined` (permanent).
    """
    request = {
        "idempotency_key": idempotency_key,
        "amount": amount,
        "currency": currency,
        "source": source,
    }
    if source == "tok_crash":
        logger.critical("Gateway driver crashed charging %s: the process dies.", idempotency_key)
        os.kill(os.getpid(), signal.SIGKILL)
    if settings.GATEWAY_OUTAGE:
        _record(request, GatewayRequest.Outcome.UNAVAILABLE)
        raise GatewayUnavailable("gateway unavailable: 503 Service Unavailable")
    if random.random() < settings.GATEWAY_FAILURE_RATE:  # noqa: S311 (a simulation)
        _record(request, GatewayRequest.Outcome.UNAVAILABLE)
        raise GatewayUnavailable("gateway timed out")
    if (
        source == "tok_flaky"
        and not GatewayRequest.objects.filter(idempotency_key=idempotency_key).exists()
    ):
        _record(request, GatewayRequest.Outcome.UNAVAILABLE)
        raise GatewayUnavailable("gateway timed out (tok_flaky fails its first request)")
    if source not in TOKENS or source == "tok_decline":
        _record(request, GatewayRequest.Outcome.DECLINED)
        raise CardDeclined("card declined (%s)" % source)

    result = _charge_once(request)
    _answer_latency()
    return result


def charge_count(*, idempotency_key: str) -> int:
    """Return how many charges the gateway accepted under ``idempotency_key`` (0 or 1)."""
    return GatewayRequest.objects.filter(
        idempotency_key=idempotency_key, outcome=GatewayRequest.Outcome.CHARGED
    ).count()


def _charge_once(request: dict) -> Charge:
    existing = _accepted(request["idempotency_key"])
    if existing is None:
        try:
            with transaction.atomic():
                row = _record(
                    request, GatewayRequest.Outcome.CHARGED, charge_id="ch_%s" % uuid.uuid4().hex
                )
            logger.info(
                "Gateway charged %s %s for %s: %s",
                request["amount"],
                request["currency"],
                request["idempotency_key"],
                row.charge_id,
            )
            return Charge(id=row.charge_id, idempotency_key=row.idempotency_key, replayed=False)
        except IntegrityError:
            # A concurrent request with the same key charged first.
            existing = _accepted(request["idempotency_key"])
    _record(request, GatewayRequest.Outcome.REPLAYED, charge_id=existing.charge_id)
    logger.info(
        "Gateway replayed charge %s for %s: nothing charged.",
        existing.charge_id,
        request["idempotency_key"],
    )
    return Charge(id=existing.charge_id, idempotency_key=existing.idempotency_key, replayed=True)


def _accepted(idempotency_key: str) -> GatewayRequest | None:
    return GatewayRequest.objects.filter(
        idempotency_key=idempotency_key, outcome=GatewayRequest.Outcome.CHARGED
    ).first()


def _record(request: dict, outcome: str, *, charge_id: str = "") -> GatewayRequest:
    return GatewayRequest.objects.create(outcome=outcome, charge_id=charge_id, **request)


def _answer_latency() -> None:
    if settings.GATEWAY_LATENCY_MS:
        time.sleep(settings.GATEWAY_LATENCY_MS / 1000)
