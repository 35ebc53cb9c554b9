"""A bad configuration stops every entry point with one line naming the problem."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.processes import BASE_DIR


def run(argv, **env_changes):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(env_changes)
    return subprocess.run(
        argv, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )


MANAGE = [sys.executable, "manage.py", "check"]
WORKER = [sys.executable, "-m", "celery", "-A", "config.celery", "worker"]
BEAT = [sys.executable, "-m", "celery", "-A", "config.celery", "beat"]


@pytest.mark.parametrize("argv", [MANAGE, WORKER, BEAT], ids=["manage", "worker", "beat"])
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
    ],
    ids=["scheme", "port", "number", "secret-key", "prefetch"],
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
