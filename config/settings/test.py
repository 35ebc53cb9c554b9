"""Tests: development settings, a fixed key, fast hashing, a shareable SQLite test database."""

from .dev import *  # noqa: F403
from .dev import DATABASES, RUN_DIR

SECRET_KEY = "test-only-secret-key"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file rather than memory, so worker processes started by the tests see the
    # rows the tests write.
    DATABASES["default"]["TEST"] = {"NAME": str(RUN_DIR / "test-db.sqlite3")}

# Tasks only the tests use (tests/tasks.py), loaded by the tests' worker processes.
CELERY_IMPORTS = ["tests.tasks"]
