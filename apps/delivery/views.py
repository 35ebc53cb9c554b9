"""A staff-only page listing the dead letters, with replay and purge actions."""

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from config import celery_app

from .dead_letters import dead_letters


@staff_member_required
@require_http_methods(["GET", "POST"])
def dead_letter_list(request):
    with celery_app.connection_for_write() as connection:
        box = dead_letters(connection)
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
