"""The health endpoint (the dead-letter pages: apps/delivery/console.py)."""

import time

from celery import current_app
from django.db import connections
from django.http import JsonResponse

from .broker_connections import connect_once
from .logs.context import mask_passwords


def healthz(request):
    """Database and broker reachable: 200, else 503; JSON with each dependency's state.

    Served by ``HealthCheckMiddleware`` before host validation and request logging, so
    that a container's health check (``Host: 127.0.0.1``) needs no ALLOWED_HOSTS entry.
    """
    checks = {"database": _check(_database), "broker": _check(_broker)}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )


def _check(probe) -> dict:
    started = time.monotonic()
    try:
        probe()
    except Exception as exc:
        return {"ok": False, "error": mask_passwords("%s: %s" % (type(exc).__name__, exc))}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def _database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    with current_app.connection_for_write(connect_timeout=1) as connection:
        connect_once(connection)  # one attempt per URL, no waiting
