"""A bad configuration stops every entry point with one line naming the problem."""

import os
import re
import secrets
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.processes import BASE_DIR, Web
from tests.servers import free_port


def run(argv, **env_changes):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(env_changes)
    return subprocess.run(
        argv, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )


MANAGE = [sys.executable, "manage.py", "check"]
WORKER = [sys.executable, "-m", "celery", "-A", "config.celery", "worker"]
BEAT = [sys.executable, "-m", "celery", "-A", "config.celery", "beat"]
# As the Procfile runs it (with the autoreloader), and as the container does.
RUNSERVER = [sys.executable, "manage.py", "runserver", "127.0.0.1:%d" % free_port()]
GUNICORN = [
    str(Path(sys.executable).parent / "gunicorn"),
    "-c",
    "config/gunicorn.py",
    "config.wsgi",
]


@pytest.mark.parametrize(
    "argv",
    [MANAGE, WORKER, BEAT, RUNSERVER, GUNICORN],
    ids=["manage", "worker", "beat", "runserver", "gunicorn"],
)
@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CELERY_BROKER_URL": "kafka://localhost:9092"},
            "Configuration error: CELERY_BROKER_URL has an unsupported scheme 'kafka'",
        ),
        (
            {"CELERY_BROKER_URL": "redis://localhost:six/0"},
            "Configuration error: CELERY_BROKER_URL='redis://localhost:six/0' is not a valid URL",
        ),
        (
            {"TASK_TIME_LIMIT_SECONDS": "soon"},
            "Configuration error: TASK_TIME_LIMIT_SECONDS='soon' is not valid",
        ),
        (
            {"DJANGO_SETTINGS_MODULE": "config.settings.prod", "ALLOWED_HOSTS": "example.com"},
            "Configuration error: Set the SECRET_KEY environment variable",
        ),
        (
            {"WORKER_PREFETCH_MULTIPLIER": "0"},
            "Configuration error: WORKER_PREFETCH_MULTIPLIER=0 must be between 1 and 100.",
        ),
        (
            {"DATABASE_URL": "nosuchdb://x"},
            "Configuration error: DATABASE_URL has an unsupported scheme 'nosuchdb': use "
            "postgres://, postgresql://, psql://, pgsql:// or sqlite://.",
        ),
        (
            {"CELERY_RESULT_BACKEND": "kafka://x"},
            "Configuration error: CELERY_RESULT_BACKEND has an unsupported scheme 'kafka': "
            "use redis://, rediss:// or rpc://.",
        ),
        (
            {"DEBUG": "maybe"},
            "Configuration error: DEBUG='maybe' is not valid: use true or false",
        ),
        (
            {
                "CELERY_BROKER_URL": "redis://localhost:6379/0",
                "CELERY_RESULT_BACKEND": "redis://LocalHost",
            },
            "Configuration error: CELERY_RESULT_BACKEND is the broker's own Redis database",
        ),
        (
            {"CELERY_BROKER_URL": "redis://a:6379/0;amqp://b//"},
            "Configuration error: CELERY_BROKER_URL='redis://a:6379/0;amqp://b//' mixes Redis "
            "and RabbitMQ: a failover list names the nodes of one RabbitMQ cluster.",
        ),
        (
            {"CELERY_BROKER_URL": "redis://a:6379/0;redis://b:6379/0"},
            "Configuration error: CELERY_BROKER_URL='redis://a:6379/0;redis://b:6379/0' lists 2 "
            "Redis servers",
        ),
        (
            {"BROKER": "kafka"},
            "Configuration error: BROKER=kafka: it must be one of redis, rabbitmq.",
        ),
        (
            {"REDIS_PORT": "70000"},
            "Configuration error: REDIS_PORT=70000 and RABBITMQ_PORT=5672 must be ports",
        ),
    ],
    ids=[
        "scheme",
        "port",
        "number",
        "secret-key",
        "prefetch",
        "database-scheme",
        "result-backend-scheme",
        "boolean",
        "results-in-broker-database",
        "broker-list-mixed",
        "broker-list-redis",
        "broker-choice",
        "broker-port",
    ],
)
def test_bad_configuration_is_one_clear_line(argv, env, message):
    result = run(argv, **env)
    assert result.returncode == 2
    assert result.stderr.strip() == message or result.stderr.strip().startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr + result.stdout


def test_a_misspelt_celery_setting_stops_the_worker(tmp_path):
    # given: settings with a typo that Celery itself would ignore
    (tmp_path / "typo_settings.py").write_text(
        textwrap.dedent(
            """
            from config.settings.dev import *
            CELERY_TASK_ACKS_LAET = True
            """
        )
    )
    env = {"DJANGO_SETTINGS_MODULE": "typo_settings", "PYTHONPATH": "%s:%s" % (tmp_path, BASE_DIR)}
    # when
    worker = run(WORKER, **env)
    check = run(MANAGE, **env)
    # then
    assert worker.returncode == 2
    assert worker.stderr.strip().startswith(
        "Configuration error: not a Celery setting, so Celery would ignore it: "
        "CELERY_TASK_ACKS_LAET."
    )
    assert check.returncode != 0
    assert "CELERY_TASK_ACKS_LAET is not a Celery setting" in check.stderr


@pytest.mark.parametrize(
    ("settings", "conn_max_age"), [("config.settings.dev", "0"), ("config.settings.prod", "60")]
)
def test_persistent_database_connections_only_outside_development(settings, conn_max_age):
    """runserver's thread per request would keep a connection per thread open."""
    answer = run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings as s; print(s.DATABASES['default']['CONN_MAX_AGE'])",
        ],
        DJANGO_SETTINGS_MODULE=settings,
        DATABASE_URL="postgres://conveyor@db.invalid:5432/conveyor",
        SECRET_KEY="x" * 50,
        ALLOWED_HOSTS="example.com",
    )
    assert (answer.returncode, answer.stdout) == (0, conn_max_age + "\n"), answer.stderr


#: What docs and .env.example give for production: HTTPS behind a proxy, HSTS for a year.
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings.prod",
    "SECRET_KEY": secrets.token_urlsafe(40),
    "ALLOWED_HOSTS": "conveyor.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def test_the_documented_production_settings_pass_the_deployment_checks(tmp_path):
    # when
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        RUN_DIR=str(tmp_path),
        **PRODUCTION,
    )
    # then
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_without_https_variables_serve_plain_http(tmp_path):
    """docker-compose runs production settings over plain HTTP: no redirect, no HSTS."""
    answer = run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, "
            "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD)",
        ],
        DJANGO_SETTINGS_MODULE="config.settings.prod",
        SECRET_KEY="local-compose-only-not-for-production-0000",
        ALLOWED_HOSTS="localhost",
        SECURE_COOKIES="false",
        RUN_DIR=str(tmp_path),
    )
    assert (answer.returncode, answer.stdout) == (0, "False 0 False False\n"), answer.stderr


def test_check_warns_of_a_misspelt_variable_and_starts_anyway(tmp_path):
    # when
    result = run(MANAGE, CELERY_BROKER_ULR="redis://elsewhere:6379/0", RUN_DIR=str(tmp_path))
    # then
    assert result.returncode == 0, result.stderr
    assert (
        "(conveyor.W001) CELERY_BROKER_ULR is set but not read; did you mean CELERY_BROKER_URL?"
        in result.stderr
    )


def test_variables_that_the_processes_set_give_no_warning(tmp_path):
    """What honcho, runserver's autoreloader, gunicorn, Celery and billiard put in the
    environment, and the environment these tests run in, are no misspellings."""
    result = run(
        MANAGE,
        RUN_DIR=str(tmp_path),
        PORT="5000",
        RUN_MAIN="true",
        SERVER_SOFTWARE="gunicorn/23.0.0",
        FORKED_BY_MULTIPROCESSING="1",
        CELERY_LOG_LEVEL="20",
        CELERY_LOG_FILE="",
        CELERY_LOG_REDIRECT="1",
        CELERY_LOG_REDIRECT_LEVEL="WARNING",
        CELERY_WORKER_CONCURRENCY="2",
        WEB_CONCURRENCY="2",
        PYTHONUNBUFFERED="1",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stderr


def test_a_worker_and_beat_log_a_misspelt_variable_once(start_worker, start_beat):
    # given
    env = {"CELERY_BROKER_ULR": "redis://elsewhere:6379/0"}
    warning = "CELERY_BROKER_ULR is set but not read; did you mean CELERY_BROKER_URL?"
    # when
    worker = start_worker(env=env)
    beat = start_beat(env=env)
    beat.wait_for("Conveyor beat started")
    # then
    assert len(worker.matching(warning)) == 1, worker.output
    assert len(beat.matching(warning)) == 1, beat.output


def test_development_logs_one_line_per_request(tmp_path):
    """The correlation middleware's line (with the request id) is the only one, for an
    error too: runserver's own line and Django's warning for a 4xx are left out."""
    # given
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.dev",
        RUN_DIR=str(tmp_path),
        # Its own database: the PostgreSQL pass's DATABASE_URL names no database here.
        DATABASE_URL="sqlite:///%s" % (tmp_path / "db.sqlite3"),
        LOG_FORMAT="console",
        PYTHONUNBUFFERED="1",
    )
    web = Web(env, port=free_port()).start()
    requests = {"/admin/login/": 200, "/api/payments/?status=lost": 400, "/api/nothing/": 404}
    try:
        # when
        for number, (path, status) in enumerate(requests.items()):
            request = urllib.request.Request(
                web.url + path, headers={"X-Request-ID": "one-line-%d" % number}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answered = response.status
            except urllib.error.HTTPError as error:
                answered = error.code
            assert answered == status
            web.wait_for("GET %s %d" % (re.escape(path), status))
    finally:
        web.stop()
        web.wait(timeout=10)
    # then
    for number, path in enumerate(requests):
        lines = web.matching(re.escape(path.split("?")[0]))
        assert len(lines) == 1, web.output
        assert "one-line-%d" % number in lines[0]
    assert web.matching("Starting development server"), web.output
