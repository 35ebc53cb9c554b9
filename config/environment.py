"""Reading configuration from the environment, with errors that name the variable.

Settings read every value through the one ``env`` object defined here. A missing or
malformed value raises :class:`ConfigurationError`; the entry points (``manage.py``,
``celery -A config.celery``, the WSGI/ASGI applications) turn it into a single line on
standard error and a non-zero exit instead of a traceback.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from urllib.parse import SplitResult, urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from apps.delivery.celery_overrides import REDIS_TRANSPORT
from apps.delivery.logs.context import mask_passwords

#: URL schemes of the brokers Conveyor supports, by kind.
BROKER_SCHEMES = {
    "redis": "redis",
    "rediss": "redis",
    "amqp": "amqp",
    "amqps": "amqp",
    "pyamqp": "amqp",
}


class ConfigurationError(ImproperlyConfigured):
    """A value read from the environment is missing or invalid."""


class Env(environ.Env):
    """``environ.Env`` whose parse errors name the variable that holds the bad value."""

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ConfigurationError:
            raise
        except ImproperlyConfigured as exc:
            raise ConfigurationError(str(exc)) from None
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                "%s=%r is not valid: %s" % (var, self.ENVIRON.get(var), exc)
            ) from None


env = Env()


def broker_kind(url: str, *, variable: str = "CELERY_BROKER_URL") -> str:
    """Return ``"redis"`` or ``"amqp"`` for a broker URL, or raise ConfigurationError."""
    parts = _split_url(url, variable)
    kind = BROKER_SCHEMES.get(parts.scheme)
    if kind is None:
        raise ConfigurationError(
            "%s has an unsupported scheme %r: use redis://, rediss://, amqp:// or amqps://."
            % (variable, parts.scheme)
        )
    if not parts.hostname:
        raise ConfigurationError("%s=%r has no host." % (variable, mask_passwords(url)))
    if kind == "redis":
        _redis_db(parts, variable)
    return kind


def broker_transport(broker_url: str) -> str | None:
    """Return the kombu transport for a broker URL, or None for kombu's own choice.

    Redis gets Conveyor's transport, which dead-letters what a worker rejects, as
    RabbitMQ does by itself.
    """
    if broker_kind(broker_url) == "redis":
        return REDIS_TRANSPORT
    return None


def default_result_backend(broker_url: str) -> str:
    """Return the result backend that goes with a broker when none is configured.

    A Redis broker keeps results on the same server in the next database number, so
    results never share a keyspace with queued messages. RabbitMQ sends results back
    to the caller over the broker itself (``rpc://``), which needs no other service.
    """
    if broker_kind(broker_url) == "amqp":
        return "rpc://"
    parts = urlsplit(broker_url)
    db = _redis_db(parts, "CELERY_BROKER_URL")
    result_db = db + 1 if db < 15 else db - 1
    return urlunsplit(parts._replace(path="/%d" % result_db))


def redis_db(url: str, *, variable: str) -> int:
    """Return the database number of a ``redis://`` URL (0 when it names none)."""
    return _redis_db(_split_url(url, variable), variable)


def schedule_from_env(variable: str, default: str):
    """Return a Celery schedule from a crontab expression or a number of seconds.

    ``"0 0 * * *"`` (minute hour day-of-month month day-of-week) gives a ``crontab``;
    ``"30"`` or ``"2.5"`` gives an interval of that many seconds.
    """
    from celery.schedules import crontab

    value = env.str(variable, default=default).strip()
    try:
        seconds = float(value)
    except ValueError:
        fields = value.split()
        if len(fields) != 5:
            raise ConfigurationError(
                "%s=%r is neither a number of seconds nor a crontab expression with five "
                "fields (minute hour day-of-month month day-of-week)." % (variable, value)
            ) from None
        minute, hour, day_of_month, month_of_year, day_of_week = fields
        try:
            return crontab(
                minute=minute,
                hour=hour,
                day_of_month=day_of_month,
                month_of_year=month_of_year,
                day_of_week=day_of_week,
            )
        except ValueError as exc:
            raise ConfigurationError("%s=%r: %s" % (variable, value, exc)) from None
    if seconds <= 0:
        raise ConfigurationError("%s=%r must be a positive number of seconds." % (variable, value))
    return timedelta(seconds=seconds)


def exit_on_configuration_error(exc_type, exc, tb) -> None:
    """``sys.excepthook`` that reports a configuration error (``ImproperlyConfigured``, as
    ConfigurationError is) as one line, and exits 2."""
    if issubclass(exc_type, ImproperlyConfigured):
        sys.stderr.write("Configuration error: %s\n" % exc)
        sys.stderr.flush()
        raise SystemExit(2)
    sys.__excepthook__(exc_type, exc, tb)


def _split_url(url: str, variable: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (urlsplit checks the port only when it is read)
    except ValueError as exc:
        raise ConfigurationError(
            "%s=%r is not a valid URL: %s" % (variable, mask_passwords(url), exc)
        ) from None
    if not parts.scheme:
        raise ConfigurationError(
            "%s=%r is not a URL (no scheme)." % (variable, mask_passwords(url))
        )
    return parts


def _redis_db(parts: SplitResult, variable: str) -> int:
    path = parts.path.strip("/")
    if not path:
        return 0
    if not path.isdigit():
        raise ConfigurationError(
            "%s names Redis database %r: use a number such as /0." % (variable, path)
        )
    return int(path)
