"""Reading configuration from the environment, with errors that name the variable.

Settings read every value through the one ``env`` object defined here, strictly: a
boolean is ``true`` or ``false`` (or 1/0, yes/no, on/off), a number is a number, a URL
has a scheme Conveyor supports. A missing or malformed value raises
:class:`ConfigurationError`; the entry points (``manage.py``, ``celery -A config.celery``,
gunicorn's ``config/gunicorn.py``) turn it into a single line on standard error and a
non-zero exit instead of a traceback.

``env`` also records the name of every variable it reads, so that a variable which is
set but read by nothing, and looks like a misspelling of one that is
(``CELERY_BROKER_ULR``), is reported (``ENVIRONMENT_VARIABLES`` in the settings,
:mod:`apps.delivery.checks`).
"""

from __future__ import annotations

import math
import sys
from contextlib import contextmanager
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
#: URL schemes of the result backends Conveyor supports.
RESULT_BACKEND_SCHEMES = ("redis", "rediss", "rpc")
#: The database backends Conveyor runs on; ``DATABASE_URL`` takes every scheme that
#: django-environ maps to one of them (``sqlite://``, ``postgres://``, ...).
DATABASE_ENGINES = ("django.db.backends.sqlite3", "django.db.backends.postgresql")
#: Redis's port when a URL names none.
REDIS_DEFAULT_PORT = 6379

#: What a boolean variable may say, in any case.
BOOLEAN_WORDS = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "on": True,
    "off": False,
}

#: Variables Conveyor reads outside the settings module in use: the production-only
#: settings, gunicorn's configuration, the process tools (apps/delivery/processes/), the
#: Procfile and docker-compose.yml. Never reported as unread.
READ_ELSEWHERE = frozenset(
    {
        "DJANGO_SETTINGS_MODULE",
        "CONN_MAX_AGE",
        "SECURE_SSL_REDIRECT",
        "SECURE_COOKIES",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "WEB_PORT",
        "WEB_CONCURRENCY",
        "WEB_TIMEOUT",
        "PROCESS_ROLE",
        "WORKER_STOP_GRACE_SECONDS",
        "WORKER_COLD_SHUTDOWN_SECONDS",
        "DEV_BROKER_STOP_WAIT_SECONDS",
        "DEV_BROKERS",
        "RABBITMQ_NODENAME",
        "RABBITMQ_MANAGEMENT_PORT",
        "ERL_EPMD_PORT",
        "FLOWER_PORT",
        "FLOWER_BASIC_AUTH",
    }
)


class ConfigurationError(ImproperlyConfigured):
    """A value read from the environment is missing or invalid."""


class Env(environ.Env):
    """``environ.Env`` that parses strictly, whose parse errors name the variable that
    holds the bad value, and that records the name of every variable it reads."""

    def __init__(self, **scheme):
        super().__init__(**scheme)
        #: The name of every variable Conveyor reads: those read elsewhere from the
        #: start (READ_ELSEWHERE), then each one read through this object, set or not.
        self.names_read: set[str] = set(READ_ELSEWHERE)

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        self.names_read.add(var)
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

    def int(self, var, default=environ.Env.NOTSET, *, minimum=None):
        """Read a whole number; one below ``minimum`` is a ConfigurationError."""
        return _in_range(var, super().int(var, default=default), minimum=minimum)

    def float(self, var, default=environ.Env.NOTSET, *, minimum=None, above=None):
        """Read a number; one below ``minimum``, or not above ``above``, is a
        ConfigurationError."""
        value = super().float(var, default=default)
        return _in_range(var, value, minimum=minimum, above=above)

    @classmethod
    def parse_value(cls, value, cast):
        """Cast ``value`` as django-environ does, but refuse what it would guess at: a
        boolean other than :data:`BOOLEAN_WORDS` (django-environ reads ``maybe`` as
        false), and a number that is not one (``nan``, ``inf``)."""
        if isinstance(value, str):
            if cast is bool:
                return _parse_bool(value)
            if cast is int:
                return _parse_number(value, int, "a whole number")
            if cast is float:
                return _parse_number(value, float, "a number")
        return super().parse_value(value, cast)


env = Env()


def broker_kind(url: str, *, variable: str = "CELERY_BROKER_URL") -> str:
    """Return ``"redis"`` or ``"amqp"`` for a broker URL, or raise ConfigurationError.

    RabbitMQ takes a failover list, ``amqp://a;amqp://b`` (the nodes of one cluster,
    tried in turn); Redis takes one server.
    """
    urls = broker_urls(url)
    if not urls:
        raise ConfigurationError("%s is empty." % variable)
    kinds = {_broker_kind(one, variable) for one in urls}
    if len(kinds) > 1:
        raise ConfigurationError(
            "%s=%r mixes Redis and RabbitMQ: a failover list names the nodes of one "
            "RabbitMQ cluster." % (variable, mask_passwords(url))
        )
    kind = kinds.pop()
    if kind == "redis" and len(urls) > 1:
        raise ConfigurationError(
            "%s=%r lists %d Redis servers: a failover list is for RabbitMQ nodes; a Redis "
            "broker is one server." % (variable, mask_passwords(url), len(urls))
        )
    return kind


def broker_urls(url: str) -> list[str]:
    """The URLs of a broker URL that may be a failover list (``;``-separated)."""
    return [part.strip() for part in url.split(";") if part.strip()]


def _broker_kind(url: str, variable: str) -> str:
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


def redis_database(url: str, *, variable: str) -> tuple[str, int, int]:
    """Return the Redis database a URL names, as ``(host, port, number)``.

    Spellings of one database compare equal: the host in lower case, port 6379 and
    database 0 when the URL names none (``redis://H:6379`` is ``redis://h/0``).
    """
    parts = _split_url(url, variable)
    host = (parts.hostname or "").lower()
    return host, parts.port or REDIS_DEFAULT_PORT, _redis_db(parts, variable)


def check_result_backend(url: str, *, broker_url: str) -> None:
    """Raise ConfigurationError unless ``url`` is a result backend Conveyor supports
    (``redis://``, ``rediss://`` or ``rpc://``) that keeps results apart from a Redis
    broker's messages."""
    variable = "CELERY_RESULT_BACKEND"
    parts = _split_url(url, variable)
    if parts.scheme not in RESULT_BACKEND_SCHEMES:
        raise ConfigurationError(
            "%s has an unsupported scheme %r: use redis://, rediss:// or rpc://."
            % (variable, parts.scheme)
        )
    if parts.scheme == "rpc":
        return
    broker_kind(url, variable=variable)  # a host, and a database number if any
    if broker_kind(broker_url) == "redis" and redis_database(
        url, variable=variable
    ) == redis_database(broker_url, variable="CELERY_BROKER_URL"):
        raise ConfigurationError(
            "CELERY_RESULT_BACKEND is the broker's own Redis database: "
            "use another database number for results."
        )


def database_from_env(variable: str, *, default: str) -> dict:
    """Return Django's ``DATABASES`` entry for the database URL in ``variable``.

    The URL must be one of SQLite's or PostgreSQL's (:data:`DATABASE_ENGINES`):
    django-environ takes any other scheme for the module path of a backend, which then
    fails to import when the first process starts.
    """
    url = env.str(variable, default=default)
    scheme = urlsplit(url).scheme
    if not scheme:
        _split_url(url, variable)  # raises: not a URL
    engine = environ.Env.DB_SCHEMES.get(scheme)
    if engine not in DATABASE_ENGINES:
        schemes = [
            "%s://" % name
            for name, backend in environ.Env.DB_SCHEMES.items()
            if backend in DATABASE_ENGINES
        ]
        raise ConfigurationError(
            "%s has an unsupported scheme %r: use %s or %s."
            % (variable, scheme, ", ".join(schemes[:-1]), schemes[-1])
        )
    if engine != "django.db.backends.sqlite3":  # sqlite://:memory: has no port to check
        _split_url(url, variable)
    return env.db_url_config(url)


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
        # One line even when the message has several (Django's own have).
        sys.stderr.write("Configuration error: %s\n" % " ".join(str(exc).split()))
        sys.stderr.flush()
        raise SystemExit(2)
    sys.__excepthook__(exc_type, exc, tb)


@contextmanager
def exiting_on_configuration_error():
    """Run a block as if it were a process's top level: a configuration error raised in
    it ends the process as :func:`exit_on_configuration_error` does, even where the
    caller would catch it and print a traceback (gunicorn reading its configuration)."""
    try:
        yield
    except ImproperlyConfigured:
        exit_on_configuration_error(*sys.exc_info())


def _in_range(variable: str, value, *, minimum=None, above=None):
    if value is None:
        return value
    if minimum is not None and value < minimum:
        raise ConfigurationError("%s=%s must be at least %s." % (variable, value, minimum))
    if above is not None and value <= above:
        raise ConfigurationError("%s=%s must be above %s." % (variable, value, above))
    return value


def _parse_bool(value: str) -> bool:
    try:
        return BOOLEAN_WORDS[value.strip().lower()]
    except KeyError:
        raise ValueError("use true or false (or 1 and 0, yes and no, on and off).") from None


def _parse_number(value: str, cast, kind: str):
    try:
        number = cast(value)
    except ValueError:
        raise ValueError("not %s." % kind) from None
    if not math.isfinite(number):
        raise ValueError("not %s." % kind)
    return number


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
