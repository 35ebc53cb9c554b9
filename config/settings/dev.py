"""Development: debug on, a throwaway secret key, local hosts only."""

from .base import *  # noqa: F403
from .base import DATABASES, LOG_LEVEL, env, logging_config

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-development-only-key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# Metrics without METRICS_TOKEN: served to whoever reaches them (runserver, the worker's
# and beat's ports listen on localhost unless told otherwise).
METRICS_TOKEN_REQUIRED = False

# Readable single lines; LOG_FORMAT=json gives production's JSON.
LOG_FORMAT = env.str("LOG_FORMAT", default="console")
LOGGING = logging_config(fmt=LOG_FORMAT, level=LOG_LEVEL)

# runserver serves each request in a thread of its own, and a persistent connection
# outlives its thread's request: under load the web process held 80 connections and
# PostgreSQL refused new ones (Django's docs: no persistent connections in development).
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0, minimum=0)
