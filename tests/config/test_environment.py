"""Reading configuration from the environment."""

from datetime import timedelta

import pytest
from celery.schedules import crontab

from config.environment import (
    ConfigurationError,
    broker_kind,
    default_result_backend,
    env,
    mask_passwords,
    schedule_from_env,
)


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
