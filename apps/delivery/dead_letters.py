"""The dead-letter queue: what failed for good, kept at the broker for an operator.

How messages get there:

- a task fails for good (a permanent error, or a transient one out of retries): the
  worker rejects its message without requeueing it (late acknowledgement, see
  ``DeliveryTask``); RabbitMQ moves it through the task queue's dead-letter exchange,
  and the Redis transport (:mod:`apps.delivery.redis_transport`) does the same;
- a message no task can take (unknown task name, malformed, a body the worker refuses
  to decode such as pickle): rejected the same way (see :mod:`apps.delivery.consumer`);
- a message delivered more than ``DELIVERY_LIMIT`` times (it keeps killing its worker).

The broker keeps the message exactly as it was sent, plus ``x-death``. The failure
facts (exception, traceback, retries, times) are kept beside it in
:class:`TaskFailure`, keyed by task id, and joined here.

The operator tools (``manage.py deadletters``, the admin page) use
:func:`dead_letters`, which speaks to either broker. A dead letter leaves the queue
only by replay or purge. Replay is at-least-once: the message is republished before it
is removed, so a failed republish leaves it in place, and the idempotency of the tasks
absorbs the rare repeat. On Redis the move is one atomic script, so concurrent replays
never duplicate a message; on RabbitMQ each message is handed to one replayer only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import traceback as traceback_module
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from kombu import Exchange, Producer, Queue

from .log_context import CORRELATION_HEADER
from .models import TaskFailure

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
#: How much of a traceback is kept: its start and, above all, its end.
TRACEBACK_HEAD, TRACEBACK_TAIL = 2_000, 8_000


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


# -- failure facts -------------------------------------------------------------


def failure_record(
    *,
    task_id: str,
    task_name: str = "",
    reason: str = TaskFailure.Reason.FAILED,
    args=None,
    kwargs=None,
    routing_key: str = "",
    exc: BaseException | None = None,
    retries: int = 0,
    correlation_id: str = "",
    final: bool,
) -> None:
    """Record a failure of ``task_id`` (``final``: its message goes to the dead-letter queue)."""
    now = timezone.now()
    values = {
        "task_name": task_name,
        "reason": reason,
        "args": _jsonable(args if args is not None else []),
        "kwargs": _jsonable(kwargs if kwargs is not None else {}),
        "routing_key": routing_key,
        "exception_type": type(exc).__name__ if exc is not None else "",
        "exception_message": str(exc) if exc is not None else "",
        "traceback": truncate_traceback(_format_traceback(exc)),
        "retries": retries,
        "correlation_id": correlation_id or "",
        "last_failed_at": now,
        "dead_lettered_at": now if final else None,
    }
    TaskFailure.objects.update_or_create(
        task_id=task_id, defaults=values, create_defaults={**values, "first_failed_at": now}
    )


def failure_forget(*, task_id: str) -> None:
    """Drop the failure facts of a task that has now succeeded."""
    TaskFailure.objects.filter(task_id=task_id).delete()


def failure_facts_expire(*, older_than: datetime) -> int:
    """Delete the facts of failures no longer dead-lettered (retried or replayed since)."""
    deleted, _ = TaskFailure.objects.filter(
        dead_lettered_at__isnull=True, last_failed_at__lt=older_than
    ).delete()
    return deleted


def dead_letters_expire(connection, *, older_than: datetime) -> int:
    """Purge dead letters that have waited since before ``older_than``."""
    box = dead_letters(connection)
    old = [
        letter.id
        for letter in box.list(limit=100_000)
        if letter.dead_lettered_at is not None and letter.dead_lettered_at < older_than
    ]
    return len(box.purge(ids=old)) if old else 0


def dead_lettered_arguments(connection, *, task_name: str) -> list:
    """The arguments of the dead letters of one task (what waits for an operator)."""
    return [
        letter.args
        for letter in dead_letters(connection).list(limit=100_000)
        if letter.task_name == task_name
    ]


def truncate_traceback(text: str) -> str:
    """Keep the start and the end of a long traceback (the end says what failed)."""
    if len(text) <= TRACEBACK_HEAD + TRACEBACK_TAIL:
        return text
    omitted = len(text) - TRACEBACK_HEAD - TRACEBACK_TAIL
    return "%s\n[... %d characters omitted ...]\n%s" % (
        text[:TRACEBACK_HEAD],
        omitted,
        text[-TRACEBACK_TAIL:],
    )


def _format_traceback(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    return "".join(traceback_module.format_exception(type(exc), exc, exc.__traceback__))


def _jsonable(value):
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


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
            "x_death": _jsonable(self.deaths),
            "headers": _jsonable({k: v for k, v in self.message.headers.items() if k != "x-death"}),
            "properties": _jsonable(self.message.properties),
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


def _message_id(message: RawMessage) -> str:
    headers = message.headers or {}
    letter_id = headers.get("id") or message.properties.get("correlation_id")
    if letter_id:
        return str(letter_id)
    return "sha1-%s" % hashlib.sha1(message.body).hexdigest()[:16]  # noqa: S324 (a name)


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
        raise NotImplementedError

    @contextmanager
    def taking(self, limit: int) -> Iterator[Iterator[tuple[RawMessage, callable]]]:
        """Yield (message, remove) pairs; ``remove()`` takes the message out for good.

        Messages not removed stay in the queue.
        """
        raise NotImplementedError

    def republish(self, message: RawMessage, queue: str) -> None:
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

    def replay(self, *, ids: list[str] | None = None, task: str | None = None) -> list[str]:
        """Republish dead letters to their queues with a fresh retry budget; return their ids."""
        replayed = []
        with self.taking(limit=100_000) as pairs:
            for message, remove in pairs:
                letter = dead_letter_from(message, {})
                if not _selected(letter, ids, task):
                    continue
                if not remove(replacement=fresh_copy(message), queue=letter.queue):
                    continue  # another replay took it first
                replayed.append(letter.id)
                logger.info(
                    "Dead letter %s (%s) replayed to %s.", letter.id, letter.task_name, letter.queue
                )
        TaskFailure.objects.filter(task_id__in=replayed).update(
            replays=F("replays") + 1, replayed_at=timezone.now(), dead_lettered_at=None
        )
        return replayed

    def purge(self, *, ids: list[str] | None = None) -> list[str]:
        """Delete dead letters (all of them without ``ids``); return their ids."""
        purged = []
        with self.taking(limit=100_000) as pairs:
            for message, remove in pairs:
                letter = dead_letter_from(message, {})
                if not _selected(letter, ids, None):
                    continue
                if remove():
                    purged.append(letter.id)
                    logger.warning("Dead letter %s (%s) purged.", letter.id, letter.task_name)
        TaskFailure.objects.filter(task_id__in=purged).delete()
        return purged

    def count(self) -> int:
        return len(self.raw_messages(limit=100_000))


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


def _selected(letter: DeadLetter, ids: list[str] | None, task: str | None) -> bool:
    if ids is not None and letter.id not in ids:
        return False
    return task is None or letter.task_name == task


def _failures_for(messages: list[RawMessage]) -> dict[str, TaskFailure]:
    ids = [_message_id(m) for m in messages]
    return {f.task_id: f for f in TaskFailure.objects.filter(task_id__in=ids)}


class RabbitMQDeadLetterBox(DeadLetterBox):
    """Messages are fetched unacknowledged; closing the channel returns those not taken."""

    def count(self) -> int:
        channel = self.connection.channel()
        try:
            return dead_letter_queue()(channel).queue_declare(passive=True).message_count
        finally:
            channel.close()

    def raw_messages(self, limit: int) -> list[RawMessage]:
        with self.taking(limit) as pairs:
            return [message for message, _ in pairs]

    @contextmanager
    def taking(self, limit: int):
        channel = self.connection.channel()
        queue = dead_letter_queue()(channel)
        queue.declare()

        def pairs():
            for _ in range(limit):
                message = queue.get(no_ack=False, accept=None)
                if message is None:
                    return
                body = message.body
                raw = RawMessage(
                    body=body.encode("utf-8") if isinstance(body, str) else body,
                    headers=dict(message.headers or {}),
                    properties=dict(message.properties or {}),
                    content_type=message.content_type or "",
                    content_encoding=message.content_encoding or "",
                )
                yield raw, self._remover(channel, message, raw)

        try:
            yield pairs()
        finally:
            channel.close()  # unacknowledged messages go back to the queue

    def _remover(self, channel, message, raw):
        def remove(replacement: RawMessage | None = None, queue: str = "") -> bool:
            if replacement is not None:
                self._publish(channel, replacement, queue)
            message.ack()
            return True

        return remove

    def _publish(self, channel, message: RawMessage, queue: str) -> None:
        properties = message.properties
        Producer(channel).publish(
            message.body,
            exchange="",
            routing_key=queue,
            headers=message.headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            correlation_id=properties.get("correlation_id"),
            reply_to=properties.get("reply_to"),
            priority=properties.get("priority"),
            delivery_mode=2,
            retry=False,
        )


#: Move one payload from the dead-letter list to a queue, if it is still there.
_MOVE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  if KEYS[2] ~= '' and ARGV[2] ~= '' then redis.call('LPUSH', KEYS[2], ARGV[2]) end
  return 1
end
return 0
"""


class RedisDeadLetterBox(DeadLetterBox):
    """The dead-letter queue is a Redis list; each move is one atomic script."""

    def count(self) -> int:
        return self.client.llen(self.queue_name)

    def __init__(self, connection):
        super().__init__(connection)
        self.channel = connection.default_channel
        self.client = self.channel.client
        self.prefix = self.channel.global_keyprefix
        self.move = self.client.register_script(_MOVE)

    def _payloads(self, limit: int) -> list[str]:
        # Oldest first: new dead letters are pushed on the left.
        return list(reversed(self.client.lrange(self.queue_name, -limit, -1)))

    def raw_messages(self, limit: int) -> list[RawMessage]:
        return [self._raw(p) for p in self._payloads(limit)]

    @contextmanager
    def taking(self, limit: int):
        def pairs():
            for payload in self._payloads(limit):
                yield self._raw(payload), self._remover(payload)

        yield pairs()

    def _remover(self, payload: str):
        def remove(replacement: RawMessage | None = None, queue: str = "") -> bool:
            target, data = "", ""
            if replacement is not None:
                target = self.prefix + queue
                data = json.dumps(self._envelope(json.loads(payload), replacement, queue))
            return bool(
                self.move(keys=[self.prefix + self.queue_name, target], args=[payload, data])
            )

        return remove

    @staticmethod
    def _raw(payload: str) -> RawMessage:
        envelope = json.loads(payload)
        properties = envelope.get("properties") or {}
        body = envelope.get("body") or ""
        if properties.get("body_encoding") == "base64":
            body = base64.b64decode(body)
        elif isinstance(body, str):
            body = body.encode("utf-8")
        return RawMessage(
            body=body,
            headers=envelope.get("headers") or {},
            properties=properties,
            content_type=envelope.get("content-type") or "",
            content_encoding=envelope.get("content-encoding") or "",
        )

    @staticmethod
    def _envelope(original: dict, message: RawMessage, queue: str) -> dict:
        # The shape kombu's Redis transport publishes, as a new delivery to the same
        # exchange and routing key.
        properties = dict(original.get("properties") or {})
        delivery_info = dict(properties.get("delivery_info") or {"routing_key": queue})
        delivery_info.pop("redelivered", None)
        properties.update(
            body_encoding="base64",
            delivery_tag=str(uuid.uuid4()),
            delivery_info=delivery_info,
            priority=0,
        )
        return {
            **original,
            "body": base64.b64encode(message.body).decode(),
            "headers": message.headers,
            "properties": properties,
        }


def dead_letters(connection) -> DeadLetterBox:
    """The dead-letter queue behind a kombu connection, whichever the broker."""
    kind = connection.transport.driver_type
    if kind == "amqp":
        return RabbitMQDeadLetterBox(connection)
    if kind == "redis":
        return RedisDeadLetterBox(connection)
    raise ValueError("no dead-letter queue on a %r broker" % kind)
