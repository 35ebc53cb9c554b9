"""Operator views: the health endpoint and the dead-letter page."""

import time

from celery import current_app
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import connections
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .dead_letters import dead_letter_box
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
        connection.ensure_connection(max_retries=0)  # one attempt, no waiting


@staff_member_required
@require_http_methods(["GET", "POST"])
def dead_letter_list(request):
    with dead_letter_box() as box:
        if request.method == "POST":
            _act(request, box)
            return redirect(request.path)
        letters = box.list(limit=500)
    return render(
        request,
        "delivery/dead_letters.html",
        {"letters": letters, "title": "Dead letters", "queue": box.queue_name},
    )


def _act(request, box) -> None:
    action = request.POST.get("action")
    ids = None if request.POST.get("all") == "1" else request.POST.getlist("id")
    if action == "replay":
        done = box.replay(ids=ids)
        messages.success(request, "%d dead letter(s) replayed." % len(done))
    elif action == "purge":
        done = box.purge(ids=ids)
        messages.warning(request, "%d dead letter(s) purged." % len(done))
    else:
        messages.error(request, "Unknown action %r." % action)
