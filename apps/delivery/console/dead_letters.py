"""The dead-letter pages of the operator console (``/admin/dead-letters/``).

Staff with ``delivery.view_dead_letters`` see the dead letters: filtered, searched,
sorted and a page at a time, each with its arguments, route, retries and replays, and a
detail page with the traceback and the raw message. Staff with
``delivery.operate_dead_letters`` replay or purge a selection, or everything matching
the filter, after a confirmation that says how many; a permanent failure is replayed
only when the operator says so again. Every action is recorded (``OperatorAction``) and
shown. Superusers hold both permissions.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from ..dead_letters import DeadLetterNotFound, dead_letter_box
from ..models import OperatorAction, TaskFailure

PAGE_SIZE = 50
VIEW, OPERATE = "delivery.view_dead_letters", "delivery.operate_dead_letters"
#: The filter's parameters, in the list's query string and the actions' forms.
FILTERS = ("task", "reason", "exception", "older_than", "q", "sort")
AGES = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}
SORTS = {
    "-dead": (lambda letter: letter.dead_lettered_at or timezone.now(), True),
    "dead": (lambda letter: letter.dead_lettered_at or timezone.now(), False),
    "task": (lambda letter: letter.task_name, False),
    "-retries": (lambda letter: letter.retries, True),
    "-replays": (lambda letter: letter.failure.replays if letter.failure else 0, True),
}


@staff_member_required
@require_http_methods(["GET", "POST"])
def dead_letter_list(request):
    require_permission(request, VIEW)
    if request.method == "POST":
        return _act(request)
    with dead_letter_box() as box:
        letters = box.list(limit=100_000)
        queue = box.queue_name
    chosen = matching(letters, request.GET)
    page = Paginator(chosen, PAGE_SIZE).get_page(request.GET.get("page"))
    for letter in page:
        letter.arguments = arguments_text(letter.args, letter.kwargs)
    filters = {name: request.GET.get(name, "") for name in FILTERS}
    return render(
        request,
        "delivery/console/dead_letters.html",
        {
            **console_context(request),
            "title": "Dead letters",
            "queue": queue,
            "page": page,
            "total": len(letters),
            "matching": len(chosen),
            "filters": filters,
            "filtered": any(filters[name] for name in FILTERS if name != "sort"),
            "query": urlencode({k: v for k, v in filters.items() if v}),
            "choices": {
                "task": sorted({letter.task_name for letter in letters if letter.task_name}),
                "reason": TaskFailure.Reason.choices,
                "exception": sorted(
                    {letter.failure.exception_type for letter in letters if _exception(letter)}
                ),
                "older_than": list(AGES),
            },
            "can_operate": request.user.has_perm(OPERATE),
            "actions": OperatorAction.objects.all()[:10],
        },
    )


@staff_member_required
def dead_letter_detail(request, letter_id: str):
    require_permission(request, VIEW)
    with dead_letter_box() as box:
        try:
            letter = box.get(letter_id)
        except DeadLetterNotFound:
            raise Http404("No dead letter %s." % letter_id) from None
    everything = letter.as_dict()
    return render(
        request,
        "delivery/console/dead_letter.html",
        {
            **console_context(request),
            "title": "Dead letter %s" % letter.id,
            "letter": letter,
            "traceback": everything.pop("traceback") or "",
            "raw": json.dumps(
                {k: everything[k] for k in ("headers", "properties", "content_type", "body")},
                indent=2,
                default=str,
            ),
            "deaths": json.dumps(everything["x_death"], indent=2, default=str),
            "can_operate": request.user.has_perm(OPERATE),
        },
    )


def matching(letters, params, *, as_of: datetime | None = None) -> list:
    """The dead letters that match a filter (``FILTERS``), sorted as it asks; ``as_of``:
    as the filter matched at that time (the letters that arrived since left out)."""
    task, reason, exception = params.get("task"), params.get("reason"), params.get("exception")
    age = AGES.get(params.get("older_than", ""))
    search = params.get("q", "").strip().lower()
    now = as_of or timezone.now()
    chosen = [
        letter
        for letter in letters
        if (not as_of or not letter.dead_lettered_at or letter.dead_lettered_at <= as_of)
        and (not task or letter.task_name == task)
        and (not reason or letter.reason == reason)
        and (not exception or _exception(letter) == exception)
        and (not age or (letter.dead_lettered_at and now - letter.dead_lettered_at >= age))
        and (not search or search in arguments_text(letter.args, letter.kwargs).lower())
    ]
    key, reverse_order = SORTS.get(params.get("sort", ""), SORTS["-dead"])
    return sorted(chosen, key=key, reverse=reverse_order)


def arguments_text(args, kwargs) -> str:
    """A task's arguments, as one line of JSON (its keyword arguments after, if any)."""
    parts = [json.dumps(args, default=str)]
    if kwargs:
        parts.append(json.dumps(kwargs, default=str))
    return " ".join(parts)


def _exception(letter) -> str:
    return letter.failure.exception_type if letter.failure else ""


def _as_of(value: str | None) -> datetime | None:
    """The time a confirmation page was shown (its ``as_of`` field), if it sent one."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SuspiciousOperation("as_of is not a time: %r" % value) from None
    return moment if timezone.is_aware(moment) else None


def console_context(request) -> dict:
    """The admin's context for a console page, without the admin's model sidebar: the
    console's tables get the width, and an operator who may see no model is not told
    "You don't have permission to view or edit anything"."""
    return {**admin.site.each_context(request), "is_nav_sidebar_enabled": False}


def require_permission(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied("You need the %s permission." % permission)


def _act(request):
    """Replay or purge a selection (``id``) or everything matching the filter (``all``):
    first a confirmation page that says how many, then the action, recorded."""
    require_permission(request, OPERATE)
    # "replay" / "purge": the selected ids; "replay:all" / "purge:all": every dead letter
    # matching the filter (the confirmation page sends all=1).
    action, _, scope = request.POST.get("action", "").partition(":")
    if action not in OperatorAction.Action.values:
        raise PermissionDenied("Unknown action %r." % action)
    filters = {name: request.POST.get(name, "") for name in FILTERS if request.POST.get(name)}
    every = scope == "all" or request.POST.get("all") == "1"
    ids = set(request.POST.getlist("id"))
    with dead_letter_box() as box:
        letters = box.list(limit=100_000)
        if every:
            # confirmed: the letters the confirmation page counted, not those since
            chosen = matching(letters, filters, as_of=_as_of(request.POST.get("as_of")))
        else:
            chosen = [letter for letter in letters if letter.id in ids]
        permanent = [letter for letter in chosen if letter.failure and letter.failure.permanent]
        back = "%s?%s" % (reverse("dead-letters"), urlencode(filters))
        if not chosen:
            messages.warning(request, "Nothing selected: no dead letter matches.")
            return redirect(back)
        if request.POST.get("confirmed") != "1":
            return render(
                request,
                "delivery/console/confirm.html",
                {
                    **console_context(request),
                    "title": "%s %d dead letter(s)?" % (action.capitalize(), len(chosen)),
                    "action": action,
                    "chosen": chosen,
                    "permanent": permanent,
                    "every": every,
                    "filters": filters,
                    "ids": sorted(ids),
                    "as_of": timezone.now().isoformat(),
                    "back": back,
                },
            )
        taken = chosen
        if action == "replay" and request.POST.get("include_permanent") != "1":
            taken = [letter for letter in chosen if letter not in permanent]
        selected = [letter.id for letter in taken]
        done = (
            (box.replay(ids=selected) if action == "replay" else box.purge(ids=selected))
            if selected
            else []
        )
    verb = "replayed" if action == "replay" else "purged"
    if not done:
        messages.warning(request, "Nothing %s." % verb)
    else:
        OperatorAction.objects.create(
            user=request.user,
            username=request.user.get_username(),
            action=action,
            count=len(done),
            letter_ids=done,
            selection=(
                {"filter": {k: v for k, v in filters.items() if k != "sort"}}
                if every
                else {"ids": sorted(ids)}
            ),
        )
        messages.success(request, "%d dead letter(s) %s." % (len(done), verb))
    if len(taken) < len(chosen):
        messages.warning(
            request,
            "%d permanent failure(s) left in the queue: confirm them explicitly to replay them."
            % (len(chosen) - len(taken)),
        )
    return redirect(back)
