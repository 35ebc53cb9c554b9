"""Counting, "total queue" style: every payment the API acknowledged is an intent, and at
the end each intent must be accounted for, by the database and the gateway's ledger.

- processed, failed, awaiting_operator: the payment's status;
- left: still pending or processing when the drain ended;
- charges: the gateway's accepted charges for the intents; duplicate: intents charged
  more than once; absorbed: repeated charge requests the gateway's idempotency key
  turned into nothing;
- lost: an intent with no charge that is neither failed nor waiting for an operator.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field


@dataclass
class Count:
    intents: int = 0
    processed: int = 0
    failed: int = 0
    awaiting_operator: int = 0
    left: int = 0
    charges: int = 0
    duplicate: int = 0
    absorbed: int = 0
    lost: int = 0
    lost_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def key(payment_id) -> str:
    """A payment id as the gateway's ledger keys it (``str(uuid)``)."""
    return str(uuid.UUID(str(payment_id)))


def statuses(database) -> dict[str, str]:
    """Every payment's status, by id."""
    rows = database.query("SELECT id, status FROM payments_payment")
    return {key(pk): status for pk, status in rows}


def count(database, intents: list[str]) -> Count:
    """Account for every intent (a payment id the API answered 202 for)."""
    status_of = statuses(database)
    charged: dict[str, int] = {}
    absorbed = 0
    for idempotency_key, outcome, number in database.query(
        "SELECT idempotency_key, outcome, COUNT(*) FROM payments_gatewayrequest "
        "GROUP BY idempotency_key, outcome"
    ):
        if outcome == "charged":
            charged[idempotency_key] = number
        elif outcome == "replayed":
            absorbed += number
    result = Count(intents=len(intents), absorbed=absorbed)
    for intent in map(key, intents):
        status = status_of.get(intent, "missing")
        charges = charged.get(intent, 0)
        result.charges += charges
        result.duplicate += charges > 1
        if status == "processed":
            result.processed += 1
        elif status == "failed":
            result.failed += 1
        elif status == "awaiting_operator":
            result.awaiting_operator += 1
        else:
            result.left += 1
        if not charges and status not in ("failed", "awaiting_operator"):
            result.lost += 1
            result.lost_ids.append(intent)
    return result


def resolved(database, intents: list[str]) -> bool:
    """Whether every intent has come to rest (processed, failed or awaiting an operator)."""
    result = count(database, intents)
    return result.left == 0 and result.processed + result.failed + result.awaiting_operator == len(
        intents
    )
