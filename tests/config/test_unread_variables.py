"""A set variable that looks meant for Conveyor or Celery, but that neither reads, is
reported; the rest of the environment is not."""

import pytest
from django.conf import settings

from apps.delivery.checks import unread_variable_warnings, unread_variables_check

#: What environments commonly hold: shells, Python, containers, CI, Kubernetes service
#: links, honcho, runserver's autoreloader, gunicorn, Celery and billiard.
ORDINARY = [
    "PATH", "HOME", "USER", "SHELL", "LANG", "LC_ALL", "TERM", "PWD", "OLDPWD", "HOSTNAME",
    "TZ", "TMPDIR", "EDITOR", "PAGER", "SSH_AUTH_SOCK", "XDG_RUNTIME_DIR", "VIRTUAL_ENV",
    "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONDEBUG",
    "PYTHON_VERSION", "GPG_KEY", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK",
    "DEBIAN_FRONTEND", "DEBUGINFOD_URLS", "XDEBUG", "IN_NIX_SHELL", "NIX_PATH",
    "DOCKER_BUILDKIT", "COMPOSE_PROJECT_NAME", "COMPOSE_DOCKER_CLI_BUILD", "CI",
    "GITHUB_ACTIONS", "GITHUB_WORKSPACE", "RUNNER_OS", "RUNNER_TEMP",
    "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "REDIS_SERVICE_HOST",
    "REDIS_SERVICE_PORT", "REDIS_PORT_6379_TCP", "REDIS_PORT_6379_TCP_ADDR",
    "POSTGRES_PORT", "POSTGRES_PASSWORD", "RABBITMQ_NODE_PORT", "RABBITMQ_DIST_PORT",
    "RABBITMQ_LOG_BASE", "RABBITMQ_MNESIA_BASE", "ERL_EPMD_ADDRESS", "PORT", "PS",
    "RUN_MAIN", "SERVER_SOFTWARE", "GUNICORN_CMD_ARGS", "FORKED_BY_MULTIPROCESSING",
    "CELERY_LOG_LEVEL", "CELERY_LOG_FILE", "CELERY_LOG_REDIRECT",
    "CELERY_LOG_REDIRECT_LEVEL", "CELERY_APP", "CELERY_BROKER", "CELERY_WORKER_CONCURRENCY",
    "CELERY_BEAT_SCHEDULER", "CELERY_BROKER_READ_URL", "CELERY_RDB_PORT",
    "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER", "PYTEST_VERSION",
    "http_proxy", "no_proxy", "BENCH_BROKER_URL", "POSTGRES_TEST_URL",
]  # fmt: skip


def warnings_for(*names: str) -> list[str]:
    return unread_variable_warnings(dict.fromkeys(names, "x"), known=settings.ENVIRONMENT_VARIABLES)


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("CELERY_BROKER_ULR", "CELERY_BROKER_URL"),
        ("CELERY_RESULTS_BACKEND", "CELERY_RESULT_BACKEND"),
        ("DATABASE_URI", "DATABASE_URL"),
        ("SECRETKEY", "SECRET_KEY"),
        ("ALLOWED_HOST", "ALLOWED_HOSTS"),
        ("LOGLEVEL", "LOG_LEVEL"),
        ("debug", "DEBUG"),
        ("SECURE_HSTS_SECOND", "SECURE_HSTS_SECONDS"),
        ("WORKER_PREFETCH_MULTIPLER", "WORKER_PREFETCH_MULTIPLIER"),
    ],
)
def test_a_misspelt_variable_is_named_with_the_one_meant(name, meant):
    assert warnings_for(name) == ["%s is set but not read; did you mean %s?" % (name, meant)]


def test_an_unknown_celery_variable_is_reported_without_a_guess():
    """Environment variables do not set Celery settings: Conveyor reads two of them."""
    assert warnings_for("CELERY_TASK_ACKS_LATE") == [
        "CELERY_TASK_ACKS_LATE is set but not read: "
        "neither Conveyor nor Celery reads such a variable."
    ]


@pytest.mark.parametrize("name", ORDINARY)
def test_an_ordinary_variable_is_not_reported(name):
    assert warnings_for(name) == []


def test_a_variable_conveyor_reads_is_not_reported():
    assert warnings_for(*settings.ENVIRONMENT_VARIABLES) == []


def test_the_check_is_a_warning(monkeypatch):
    # given
    monkeypatch.setenv("CELERY_BROKER_ULR", "redis://elsewhere:6379/0")
    # when
    (warning,) = [w for w in unread_variables_check(None) if "CELERY_BROKER_ULR" in w.msg]
    # then
    assert warning.id == "conveyor.W001"
    assert not warning.is_serious()
