"""gunicorn settings (``gunicorn -c config/gunicorn.py config.wsgi``): the web process in
containers. Its own log lines use the project's format; request lines come from the
correlation middleware, so gunicorn's access log stays off."""

import os

from config.logs import logging_config

bind = "0.0.0.0:%s" % os.environ.get("WEB_PORT", "8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Longer than a slow request, shorter than the container's stop grace period.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = timeout
# Proxies in front may keep connections open.
keepalive = 5
logconfig_dict = logging_config(
    fmt=os.environ.get("LOG_FORMAT", "json"), level=os.environ.get("LOG_LEVEL", "INFO").upper()
)
# gunicorn gives its loggers handlers of its own; these send them to the project's.
# Its access lines would repeat the middleware's request lines (which carry the
# correlation id): only their warnings pass.
logconfig_dict["loggers"]["gunicorn.error"] = {"handlers": [], "propagate": True}
logconfig_dict["loggers"]["gunicorn.access"] = {
    "handlers": [],
    "propagate": True,
    "level": "WARNING",
}
