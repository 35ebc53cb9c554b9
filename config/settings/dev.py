"""Development: debug on, a throwaway secret key, local hosts only."""

from .base import *  # noqa: F403
from .base import LOG_LEVEL, env, logging_config

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-development-only-key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# Readable single lines; LOG_FORMAT=json gives production's JSON.
LOG_FORMAT = env.str("LOG_FORMAT", default="console")
LOGGING = logging_config(fmt=LOG_FORMAT, level=LOG_LEVEL)
