"""gunicorn settings (``gunicorn -c config/gunicorn.py config.wsgi``): the web process in
containers. Its own log lines use the project's format; request lines come from the
correlation middleware, so gunicorn's access log stays off."""

import os

from django.conf import settings as django_settings

from apps.delivery.metrics import directory as metrics_directory
from config.environment import env, exiting_on_configuration_error
from config.logs import logging_config

# A configuration error stops gunicorn's master with one line, before it boots a worker
# (where it would be a traceback, again for each worker).
with exiting_on_configuration_error():
    django_settings.INSTALLED_APPS  # noqa: B018 (reading a setting loads the Django settings)
    bind = "0.0.0.0:%d" % env.int("WEB_PORT", default=8000, minimum=1)
    workers = env.int("WEB_CONCURRENCY", default=2, minimum=1)
    # Longer than a slow request, shorter than the container's stop grace period.
    timeout = env.int("WEB_TIMEOUT", default=30, minimum=1)
    logconfig_dict = logging_config(
        fmt=os.environ.get("LOG_FORMAT", "json"),
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
    )
graceful_timeout = timeout
# Proxies in front may keep connections open.
keepalive = 5
# gunicorn gives its loggers handlers of its own; these send them to the project's.
# Its access lines would repeat the middleware's request lines (which carry the
# correlation id): only their warnings pass.
logconfig_dict["loggers"]["gunicorn.error"] = {"handlers": [], "propagate": True}
logconfig_dict["loggers"]["gunicorn.access"] = {
    "handlers": [],
    "propagate": True,
    "level": "WARNING",
}


def child_exit(server, worker):
    """A gunicorn worker exited: its live gauges leave the web's metrics (the master
    prepared the metrics directory the workers share: apps/delivery/metrics/)."""
    metrics_directory.mark_process_dead(worker.pid)
