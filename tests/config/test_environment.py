"""Reading configuration from the environment."""

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.environment import (
    READ_ELSEWHERE,
    ConfigurationError,
    broker_kind,
    check_result_backend,
    database_from_env,
    default_result_backend,
    env,
    exit_on_configuration_error,
    mask_passwords,
    redis_database,
    schedule_from_env,
)
from tests.processes import BASE_DIR


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://localhost:6379/0", "redis"),
        ("rediss://:secret@cache.example.com:6380/2", "redis"),
        ("amqp://guest:guest@localhost:5672//", "amqp"),
        ("amqps://user:pw@mq.example.com/vhost", "amqp"),
    ],
)
def test_broker_kind_follows_the_scheme(url, kind):
    assert broker_kind(url) == kind


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("kafka://localhost:9092", "CELERY_BROKER_URL has an unsupported scheme 'kafka'"),
        (
            "redis://localhost:port/0",
            "CELERY_BROKER_URL='redis://localhost:port/0' is not a valid URL",
        ),
        ("redis://localhost:6379/zero", "CELERY_BROKER_URL names Redis database 'zero'"),
        ("localhost:6379", "CELERY_BROKER_URL has an unsupported scheme 'localhost'"),
        ("amqp://", "CELERY_BROKER_URL='amqp://' has no host"),
    ],
)
def test_a_bad_broker_url_names_the_variable(url, message):
    with pytest.raises(
        ConfigurationError, match="^" + message.replace("(", "\\(").replace("?", "\\?")
    ):
        broker_kind(url)


def test_results_default_to_the_next_redis_database_of_the_broker():
    assert default_result_backend("redis://:pw@host:6379/0") == "redis://:pw@host:6379/1"
    assert default_result_backend("redis://host:6379") == "redis://host:6379/1"
    assert default_result_backend("redis://host:6379/15") == "redis://host:6379/14"


def test_results_default_to_rpc_on_rabbitmq():
    assert default_result_backend("amqp://guest:guest@localhost:5672//") == "rpc://"


def test_mask_passwords_hides_only_the_password():
    assert mask_passwords("amqp://user:s3cret@mq:5672//") == "amqp://user:***@mq:5672//"
    assert mask_passwords("redis://localhost:6379/0") == "redis://localhost:6379/0"


def test_schedule_from_env_reads_crontab_or_seconds(monkeypatch):
    monkeypatch.setenv("SOME_SCHEDULE", "*/5 3 * * 1")
    schedule = schedule_from_env("SOME_SCHEDULE", "0 0 * * *")
    assert isinstance(schedule, crontab)
    assert schedule.minute == set(range(0, 60, 5))
    assert schedule.hour == {3}
    assert schedule.day_of_week == {1}

    monkeypatch.setenv("SOME_SCHEDULE", "2.5")
    assert schedule_from_env("SOME_SCHEDULE", "0 0 * * *") == timedelta(seconds=2.5)

    monkeypatch.delenv("SOME_SCHEDULE")
    assert schedule_from_env("SOME_SCHEDULE", "0 0 * * *").hour == {0}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "every minute",
            "SOME_SCHEDULE='every minute' is neither a number of seconds nor a crontab",
        ),
        ("61 * * * *", "SOME_SCHEDULE='61 \\* \\* \\* \\*': "),
        ("-5", "SOME_SCHEDULE='-5' must be a positive number of seconds"),
    ],
)
def test_a_bad_schedule_names_the_variable(monkeypatch, value, message):
    monkeypatch.setenv("SOME_SCHEDULE", value)
    with pytest.raises(ConfigurationError, match="^" + message):
        schedule_from_env("SOME_SCHEDULE", "0 0 * * *")


def test_an_unparsable_number_names_the_variable(monkeypatch):
    monkeypatch.setenv("SOME_NUMBER", "ten")
    with pytest.raises(ConfigurationError, match=r"^SOME_NUMBER='ten' is not valid"):
        env.int("SOME_NUMBER", default=1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("yes", True),
        ("no", False),
        ("on", True),
        ("off", False),
        ("TRUE", True),
        ("Off", False),
        (" yes ", True),
    ],
)
def test_a_boolean_is_one_of_eight_words_in_any_case(monkeypatch, value, expected):
    monkeypatch.setenv("SOME_FLAG", value)
    assert env.bool("SOME_FLAG", default=not expected) is expected


@pytest.mark.parametrize("value", ["maybe", "2", "-1", "y", "ok", "enabled", ""])
def test_any_other_boolean_is_a_configuration_error(monkeypatch, value):
    """django-environ would read these as true or false without a word."""
    monkeypatch.setenv("SOME_FLAG", value)
    with pytest.raises(
        ConfigurationError,
        match=r"^SOME_FLAG=%s is not valid: use true or false \(or 1 and 0, yes and no, on and "
        r"off\)\.$" % re.escape(repr(value)),
    ):
        env.bool("SOME_FLAG", default=False)


@pytest.mark.parametrize(
    ("cast", "value", "message"),
    [
        ("int", "ten", "SOME_NUMBER='ten' is not valid: not a whole number."),
        ("int", "1.5", "SOME_NUMBER='1.5' is not valid: not a whole number."),
        ("float", "fast", "SOME_NUMBER='fast' is not valid: not a number."),
        ("float", "nan", "SOME_NUMBER='nan' is not valid: not a number."),
        ("float", "inf", "SOME_NUMBER='inf' is not valid: not a number."),
    ],
)
def test_a_number_that_is_not_one_names_the_variable(monkeypatch, cast, value, message):
    monkeypatch.setenv("SOME_NUMBER", value)
    with pytest.raises(ConfigurationError, match="^%s$" % re.escape(message)):
        getattr(env, cast)("SOME_NUMBER", default=1)


def test_a_number_out_of_range_names_the_variable(monkeypatch):
    monkeypatch.setenv("SOME_NUMBER", "-1")
    assert env.int("SOME_NUMBER", default=1) == -1
    with pytest.raises(ConfigurationError, match=r"^SOME_NUMBER=-1 must be at least 0\.$"):
        env.int("SOME_NUMBER", default=1, minimum=0)
    monkeypatch.setenv("SOME_NUMBER", "0")
    assert env.float("SOME_NUMBER", default=1.0, minimum=0) == 0
    with pytest.raises(ConfigurationError, match=r"^SOME_NUMBER=0.0 must be above 0\.$"):
        env.float("SOME_NUMBER", default=1.0, above=0)


def test_an_unset_number_may_stay_unset(monkeypatch):
    monkeypatch.setenv("SOME_NUMBER", "")
    assert env.int("SOME_NUMBER", default=None, minimum=1) is None


@pytest.mark.parametrize(
    ("url", "engine"),
    [
        ("sqlite:////tmp/conveyor.sqlite3", "django.db.backends.sqlite3"),
        ("sqlite://:memory:", "django.db.backends.sqlite3"),
        ("postgres://conveyor:pw@db:5432/conveyor", "django.db.backends.postgresql"),
        ("postgresql://conveyor@db/conveyor", "django.db.backends.postgresql"),
        ("pgsql://conveyor@db/conveyor", "django.db.backends.postgresql"),
    ],
)
def test_the_database_is_sqlite_or_postgresql(monkeypatch, url, engine):
    monkeypatch.setenv("SOME_DATABASE_URL", url)
    assert database_from_env("SOME_DATABASE_URL", default="sqlite://")["ENGINE"] == engine


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "nosuchdb://x",
            "SOME_DATABASE_URL has an unsupported scheme 'nosuchdb': use postgres://, "
            "postgresql://, psql://, pgsql:// or sqlite://.",
        ),
        ("mysql://u:pw@db/conveyor", "SOME_DATABASE_URL has an unsupported scheme 'mysql'"),
        ("db.example.com", "SOME_DATABASE_URL='db.example.com' is not a URL (no scheme)."),
        (
            "postgres://u:secret@db:port/conveyor",
            "SOME_DATABASE_URL='postgres://u:***@db:port/conveyor' is not a valid URL",
        ),
    ],
)
def test_a_bad_database_url_names_the_variable(monkeypatch, url, message):
    monkeypatch.setenv("SOME_DATABASE_URL", url)
    with pytest.raises(ConfigurationError, match="^" + re.escape(message)):
        database_from_env("SOME_DATABASE_URL", default="sqlite://")


@pytest.mark.parametrize(
    ("url", "same_as"),
    [
        ("redis://h:6379", "redis://h:6379/0"),
        ("redis://H/0", "redis://h:6379/0"),
        ("rediss://:pw@Cache.Example.com:6380/2", "redis://cache.example.com:6380/2"),
    ],
)
def test_one_redis_database_has_one_identity_however_spelt(url, same_as):
    assert redis_database(url, variable="X") == redis_database(same_as, variable="X")


@pytest.mark.parametrize(
    "backend",
    [
        "redis://localhost:6379/0",
        "redis://localhost:6379",
        "redis://LOCALHOST/",
        "rediss://:pw@localhost:6379/0",
    ],
)
def test_results_in_the_brokers_own_redis_database_are_refused(backend):
    with pytest.raises(ConfigurationError, match=r"^CELERY_RESULT_BACKEND is the broker's own"):
        check_result_backend(backend, broker_url="redis://localhost:6379/0")


@pytest.mark.parametrize(
    ("backend", "broker"),
    [
        ("redis://localhost:6379/1", "redis://localhost:6379/0"),
        ("redis://otherhost:6379/0", "redis://localhost:6379/0"),
        ("redis://localhost:6380/0", "redis://localhost:6379/0"),
        ("rpc://", "redis://localhost:6379/0"),
        ("rpc://", "amqp://guest:guest@localhost:5672//"),
        ("redis://localhost:6379/0", "amqp://guest:guest@localhost:5672//"),
    ],
)
def test_results_elsewhere_are_accepted(backend, broker):
    check_result_backend(backend, broker_url=broker)


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        (
            "kafka://x",
            "CELERY_RESULT_BACKEND has an unsupported scheme 'kafka': "
            "use redis://, rediss:// or rpc://.",
        ),
        ("db+postgresql://db/results", "CELERY_RESULT_BACKEND has an unsupported scheme"),
        ("redis://", "CELERY_RESULT_BACKEND='redis://' has no host."),
        ("redis://localhost/one", "CELERY_RESULT_BACKEND names Redis database 'one'"),
    ],
)
def test_a_bad_result_backend_names_the_variable(backend, message):
    with pytest.raises(ConfigurationError, match="^" + re.escape(message)):
        check_result_backend(backend, broker_url="amqp://guest:guest@localhost:5672//")


def test_a_configuration_error_of_several_lines_is_reported_on_one(capsys):
    error = ImproperlyConfigured("'nosuchdb' isn't an available database backend.\n    Try one.")
    with pytest.raises(SystemExit) as exit_:
        exit_on_configuration_error(ImproperlyConfigured, error, None)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "Configuration error: 'nosuchdb' isn't an available database backend. Try one.\n"
    )


def variables_in_env_example() -> set[str]:
    text = (BASE_DIR / ".env.example").read_text()
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def variables_read_by(settings_module: str, tmp_path: Path) -> set[str]:
    """The variables a settings module reads, in a process of its own."""
    answer = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; print(*sorted(settings.ENVIRONMENT_VARIABLES))",
        ],
        cwd=BASE_DIR,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": settings_module,
            "SECRET_KEY": "x" * 50,
            "ALLOWED_HOSTS": "example.com",
            "RUN_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(answer.stdout.split())


def test_env_example_lists_every_variable_the_settings_read(tmp_path):
    # given
    documented = variables_in_env_example()
    read = variables_read_by("config.settings.dev", tmp_path) | variables_read_by(
        "config.settings.prod", tmp_path
    )
    # then: every variable the settings read is documented, and every documented
    # variable is read (a stale one would be reported as unread)
    assert read - READ_ELSEWHERE <= documented
    assert documented <= read


@pytest.mark.parametrize("name", sorted(READ_ELSEWHERE))
def test_every_variable_read_elsewhere_is_read_somewhere(name):
    sources = [
        path
        for path in [
            *BASE_DIR.joinpath("apps").rglob("*.py"),
            *BASE_DIR.joinpath("config").rglob("*.py"),
            BASE_DIR / "manage.py",
            BASE_DIR / "Procfile",
            BASE_DIR / "docker-compose.yml",
        ]
        if path.name != "environment.py"
    ]
    assert any(name in path.read_text() for path in sources)
