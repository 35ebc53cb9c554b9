"""One JSON error shape under ``/api/``, whatever answered (see :mod:`.problems`)."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponsePermanentRedirect
from django.urls import Resolver404, resolve

from .problems import CONTENT_TYPE, is_api_request, problem

#: Answer headers an error keeps when its body is replaced by a problem.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class ProblemDetailsMiddleware:
    """Under ``/api/``: every error answer as problem details; ``OPTIONS`` answered with
    the methods a URL allows; ``HEAD`` as ``GET`` without a body; a URL missing its
    trailing slash redirected with ``308``, which keeps the method and the body (Django's
    ``APPEND_SLASH`` cannot redirect a POST)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api_request(request):
            return self.get_response(request)
        if not request.path_info.endswith("/") and _resolves(request.path_info + "/"):
            url = request.path + "/"
            if request.META.get("QUERY_STRING"):
                url += "?" + request.META["QUERY_STRING"]
            return HttpResponsePermanentRedirect(url, status=308)
        head = request.method == "HEAD"
        if head:
            request.method = "GET"
        response = self.get_response(request)
        if head:
            request.method = "HEAD"
            response.content = b""
        if request.method == "OPTIONS" and response.status_code == 405:
            return _options(response)
        if response.status_code >= 400 and not _is_json(response):
            return _as_problem(request, response)
        return response


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def _is_json(response) -> bool:
    content_type = response.get("Content-Type", "").split(";")[0].strip()
    return content_type in ("application/json", CONTENT_TYPE)


def _allowed(not_allowed) -> str:
    """The ``Allow`` header of a 405, with the methods this middleware adds."""
    methods = {m.strip() for m in not_allowed.get("Allow", "").split(",") if m.strip()}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted({*methods, "OPTIONS"}))


def _options(not_allowed) -> HttpResponse:
    response = HttpResponse(status=204)
    response["Allow"] = _allowed(not_allowed)
    return response


def _as_problem(request, response) -> HttpResponse:
    detail = None
    if response.status_code == 405:
        response["Allow"] = _allowed(response)
        detail = "Method %s is not allowed here; use %s." % (request.method, response["Allow"])
    elif response.status_code == 404:
        detail = "Nothing at %s." % request.path
    answer = problem(response.status_code, detail)
    for header in KEPT_HEADERS:
        if header in response:
            answer[header] = response[header]
    return answer
