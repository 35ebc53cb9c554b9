"""What every broker's dead-letter queue offers the operator tools: a dead letter joined
with its failure facts, and list, get, replay and purge over two primitives that each
broker implements (:mod:`.rabbitmq`, :mod:`.redis`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from kombu import Exchange, Queue

from ..failures import jsonable
from ..logs.context import CORRELATION_HEADER
from ..models import TaskFailure

logger = logging.getLogger(__name__)

#: Headers that describe a message's past life, dropped when it is replayed.
STALE_HEADERS = (
    "x-death",
    "x-delivery-count",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-first-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-last-death-exchange",
    "redelivered",
)


def dead_letter_queue() -> Queue:
    """The dead-letter queue and its exchange, as declared on either broker."""
    name = settings.DEAD_LETTER_QUEUE
    return Queue(
        name,
        Exchange(name, type="direct", durable=True),
        routing_key=name,
        durable=True,
        # Replicated and durable like the task queue; no delivery limit: browsing it
        # hands messages out and takes them back.
        queue_arguments={"x-queue-type": "quorum"},
    )


def declare_dead_letter_queue(connection) -> None:
    """Declare the dead-letter exchange and queue (RabbitMQ drops dead letters without them)."""
    dead_letter_queue()(connection.default_channel).declare()


# -- reading the queue -----------------------------------------------------------


@dataclass
class RawMessage:
    """A message as the broker holds it."""

    body: bytes
    headers: dict
    properties: dict
    content_type: str
    content_encoding: str


@dataclass
class DeadLetter:
    """A dead-lettered message joined with its failure facts."""

    id: str
    task_name: str
    queue: str
    routing_key: str
    reason: str
    error: str
    dead_lettered_at: datetime | None
    args: object
    kwargs: object
    retries: int
    correlation_id: str
    deaths: list = field(default_factory=list)
    failure: TaskFailure | None = None
    message: RawMessage | None = None

    @property
    def age(self):
        return timezone.now() - self.dead_lettered_at if self.dead_lettered_at else None

    def as_dict(self) -> dict:
        """Everything known about the dead letter, JSON-ready (``deadletters show``)."""
        failure = self.failure
        return {
            "id": self.id,
            "task": self.task_name,
            "queue": self.queue,
            "routing_key": self.routing_key,
            "reason": self.reason,
            "error": self.error,
            "dead_lettered_at": _iso(self.dead_lettered_at),
            "args": self.args,
            "kwargs": self.kwargs,
            "retries": self.retries,
            "correlation_id": self.correlation_id,
            "exception_type": failure.exception_type if failure else None,
            "exception_message": failure.exception_message if failure else None,
            "traceback": failure.traceback if failure else None,
            "first_failed_at": _iso(failure.first_failed_at) if failure else None,
            "last_failed_at": _iso(failure.last_failed_at) if failure else None,
            "replays": failure.replays if failure else 0,
            "x_death": jsonable(self.deaths),
            "headers": jsonable({k: v for k, v in self.message.headers.items() if k != "x-death"}),
            "properties": jsonable(self.message.properties),
            "content_type": self.message.content_type,
            "body": _body_text(self.message),
        }


def dead_letter_from(message: RawMessage, failures: dict[str, TaskFailure]) -> DeadLetter:
    """Build a :class:`DeadLetter` from a raw message and the failure facts by task id."""
    headers = message.headers or {}
    letter_id = _message_id(message)
    failure = failures.get(letter_id)
    deaths = [_death(d) for d in headers.get("x-death") or []]
    last_death = deaths[0] if deaths else {}
    args, kwargs = _arguments(message)
    if failure is not None and failure.exception_type:
        error = "%s: %s" % (failure.exception_type, failure.exception_message)
    elif failure is not None:
        error = failure.get_reason_display()
    else:
        error = "rejected (%s)" % last_death.get("reason", "unknown reason")
    return DeadLetter(
        id=letter_id,
        task_name=headers.get("task") or (failure.task_name if failure else ""),
        queue=last_death.get("queue") or settings.TASK_QUEUE,
        routing_key=(last_death.get("routing-keys") or [""])[0],
        reason=failure.reason if failure else last_death.get("reason", ""),
        error=error,
        dead_lettered_at=(failure.dead_lettered_at if failure else None) or last_death.get("time"),
        args=args,
        kwargs=kwargs,
        retries=failure.retries if failure else int(headers.get("retries") or 0),
        correlation_id=(failure.correlation_id if failure else "")
        or headers.get(CORRELATION_HEADER, ""),
        deaths=deaths,
        failure=failure,
        message=message,
    )


def message_id(headers: dict, properties: dict, body: bytes | str) -> str:
    """A message's id: its task id, else a name made from its body (the same wherever
    the message is seen: by the worker that refused it, or in the dead-letter queue)."""
    letter_id = (headers or {}).get("id") or (properties or {}).get("correlation_id")
    if letter_id:
        return str(letter_id)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return "sha1-%s" % hashlib.sha1(body).hexdigest()[:16]  # noqa: S324 (a name)


def _message_id(message: RawMessage) -> str:
    return message_id(message.headers, message.properties, message.body)


def _arguments(message: RawMessage):
    if message.content_type == "application/json":
        try:
            body = json.loads(message.body)
            if isinstance(body, list) and len(body) == 3:
                return body[0], body[1]
        except ValueError:
            pass
    headers = message.headers or {}
    return headers.get("argsrepr"), headers.get("kwargsrepr")


def _death(entry: dict) -> dict:
    entry = dict(entry)
    moment = entry.get("time")
    if isinstance(moment, int | float):
        entry["time"] = datetime.fromtimestamp(moment, tz=UTC)
    elif isinstance(moment, datetime) and moment.tzinfo is None:
        entry["time"] = moment.replace(tzinfo=UTC)
    return entry


def _body_text(message: RawMessage) -> str:
    try:
        return message.body.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(message.body).decode()


def _letters(ids: list[str]) -> str:
    return "%d dead letter%s" % (len(ids), "" if len(ids) == 1 else "s")


def _ids(ids: list[str], shown: int = 10) -> str:
    """The first ``shown`` ids, and how many more: one log line, whatever the count."""
    more = len(ids) - shown
    return ", ".join(ids[:shown]) + (" and %d more" % more if more > 0 else "")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# -- broker access -------------------------------------------------------------------


class DeadLetterNotFound(LookupError):
    """No dead letter has that id."""


class DeadLetterBox:
    """Browse, replay and purge the dead-letter queue of one broker connection."""

    def __init__(self, connection):
        self.connection = connection
        self.queue_name = settings.DEAD_LETTER_QUEUE

    # The two primitives each broker implements: look at the messages, and take
    # them one by one, deciding for each whether it leaves the queue.

    def raw_messages(self, limit: int) -> list[RawMessage]:
        """The first ``limit`` messages, oldest first, left in the queue."""
        raise NotImplementedError

    @contextmanager
    def taking(self, limit: int) -> Iterator[Iterator[tuple[RawMessage, callable]]]:
        """Yield (message, remove) pairs. ``remove()`` takes the message out for good;
        ``remove(replacement=copy, queue=name)`` publishes ``copy`` to ``name`` first. It
        returns False if the message had gone already (another operator took it).

        Messages not removed stay in the queue.
        """
        raise NotImplementedError

    # What the tools use.

    def list(self, *, limit: int = 1000) -> list[DeadLetter]:
        messages = self.raw_messages(limit)
        failures = _failures_for(messages)
        return [dead_letter_from(m, failures) for m in messages]

    def get(self, letter_id: str) -> DeadLetter:
        for letter in self.list(limit=100_000):
            if letter.id == letter_id:
                return letter
        raise DeadLetterNotFound(letter_id)

    def replay(
        self,
        *,
        ids: list[str] | None = None,
        task: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Republish dead letters to their queues with a fresh retry budget; return their
        ids. ``progress(done)`` is called after each one."""
        replayed = []
        ids = set(ids) if ids is not None else None
        with self.taking(limit=100_000) as pairs:
            for message, remove in pairs:
                letter = dead_letter_from(message, {})
                if not _selected(letter, ids, task):
                    continue
                if not remove(replacement=fresh_copy(message), queue=letter.queue):
                    continue  # another replay took it first
                replayed.append(letter.id)
                logger.debug(
                    "Dead letter %s (%s) replayed to %s.", letter.id, letter.task_name, letter.queue
                )
                if progress:
                    progress(len(replayed))
        TaskFailure.objects.filter(task_id__in=replayed).update(
            replays=F("replays") + 1, replayed_at=timezone.now(), dead_lettered_at=None
        )
        if replayed:
            logger.info("%s replayed: %s.", _letters(replayed), _ids(replayed))
        return replayed

    def purge(
        self, *, ids: list[str] | None = None, progress: Callable[[int], None] | None = None
    ) -> list[str]:
        """Delete dead letters (all of them without ``ids``); return their ids.
        ``progress(done)`` is called after each one."""
        purged = []
        ids = set(ids) if ids is not None else None
        with self.taking(limit=100_000) as pairs:
            for message, remove in pairs:
                letter = dead_letter_from(message, {})
                if not _selected(letter, ids, None):
                    continue
                if remove():
                    purged.append(letter.id)
                    logger.debug("Dead letter %s (%s) purged.", letter.id, letter.task_name)
                    if progress:
                        progress(len(purged))
        TaskFailure.objects.filter(task_id__in=purged).delete()
        if purged:
            logger.warning("%s purged: %s.", _letters(purged), _ids(purged))
        return purged

    def count(self) -> int:
        return len(self.raw_messages(limit=100_000))

    def expire(self, *, older_than: datetime) -> int:
        """Purge the dead letters that have waited since before ``older_than``; return how many."""
        old = [
            letter.id
            for letter in self.list(limit=100_000)
            if letter.dead_lettered_at is not None and letter.dead_lettered_at < older_than
        ]
        return len(self.purge(ids=old)) if old else 0

    def arguments_of(self, task_name: str) -> list:
        """The arguments of the dead letters of one task (what waits for an operator)."""
        return [letter.args for letter in self.list(limit=100_000) if letter.task_name == task_name]


def fresh_copy(message: RawMessage) -> RawMessage:
    """The message to replay: same task and arguments, a fresh retry budget, run now."""
    headers = {k: v for k, v in (message.headers or {}).items() if k not in STALE_HEADERS}
    if "retries" in headers:
        headers["retries"] = 0
    # A retry's message carries the time it was due; a replay runs now, and unexpired.
    for name in ("eta", "expires"):
        if name in headers:
            headers[name] = None
    headers["replayed"] = int(headers.get("replayed") or 0) + 1
    return RawMessage(
        body=message.body,
        headers=headers,
        properties=dict(message.properties),
        content_type=message.content_type,
        content_encoding=message.content_encoding,
    )


def _selected(letter: DeadLetter, ids: Collection[str] | None, task: str | None) -> bool:
    if ids is not None and letter.id not in ids:
        return False
    return task is None or letter.task_name == task


def _failures_for(messages: list[RawMessage]) -> dict[str, TaskFailure]:
    ids = [_message_id(m) for m in messages]
    return {f.task_id: f for f in TaskFailure.objects.filter(task_id__in=ids)}
