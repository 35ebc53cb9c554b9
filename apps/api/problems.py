"""Errors as RFC 9457 problem details, for every error under ``/api/``.

One shape, whoever raised the error: the API's views, the request parser, Django before
the view (a bad Host, a body over the size limit, the CSRF check), or an exception::

    {"type": "about:blank", "title": "Bad Request", "status": 400,
     "detail": "2 fields are invalid.", "errors": {"amount": ["..."]}}

``errors`` appears on validation errors only, one list of messages per field (a body
field, a header such as ``Idempotency-Key``, a query parameter, or ``body`` itself).
Outside ``/api/`` Django's own pages answer as before.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views import defaults
from django.views.csrf import csrf_failure as django_csrf_failure
from ninja import Schema
from ninja import errors as ninja_errors

logger = logging.getLogger(__name__)

#: Requests under this path answer errors as problem details.
API_PREFIX = "/api/"
CONTENT_TYPE = "application/problem+json"


class Problem(Schema):
    """An error, as RFC 9457 problem details (the OpenAPI schema of every error answer)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: dict[str, list[str]] | None = None


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def problem(
    status: int, detail: str | None = None, *, errors: dict[str, list[str]] | None = None
) -> JsonResponse:
    """A problem-details answer with the given status (title: the status's phrase)."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body = {"type": "about:blank", "title": phrase, "status": status, "detail": detail or phrase}
    if errors:
        body["errors"] = errors
    return JsonResponse(body, status=status, content_type=CONTENT_TYPE)


def for_exception(exc: BaseException | None, status: int) -> JsonResponse:
    """The problem for an exception Django turned into ``status`` before or around a view."""
    if isinstance(exc, RequestDataTooBig):
        return problem(413, "The request body is larger than the server accepts.")
    if isinstance(exc, DisallowedHost):
        return problem(400, "The Host header names a host this server does not serve.")
    return problem(status)


# Django's error views (config/urls.py names them handler400, handler403, ...): a
# problem under /api/, Django's page elsewhere.


def bad_request(request, exception=None):
    if is_api_request(request):
        return for_exception(exception, 400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if is_api_request(request):
        return problem(403)
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception=None):
    if is_api_request(request):
        return problem(404, "Nothing at %s." % request.path)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if is_api_request(request):
        return problem(500, "The server failed to answer; the error is logged.")
    return defaults.server_error(request)


def csrf_failure(request, reason=""):
    """``CSRF_FAILURE_VIEW``. The API's views need no CSRF token (they read no cookie);
    this answers a request that reached another view under /api/ without one."""
    if is_api_request(request):
        return problem(403, "CSRF check failed: %s" % reason)
    return django_csrf_failure(request, reason=reason)


# The API's own errors (ProblemDetailsAPI, apps/api/base.py, installs these).


def install(api) -> None:
    """Answer every error a ``NinjaAPI`` view raises as a problem."""
    api.add_exception_handler(ninja_errors.ValidationError, _invalid_input)
    api.add_exception_handler(ninja_errors.HttpError, _http_error)
    api.add_exception_handler(Http404, lambda request, exc: problem(404, str(exc) or None))
    api.add_exception_handler(RequestDataTooBig, lambda request, exc: for_exception(exc, 413))
    # A value the database refuses to compare (the schemas validate first: a safety net).
    api.add_exception_handler(
        DjangoValidationError,
        lambda request, exc: problem(400, "Invalid value: %s" % "; ".join(exc.messages)),
    )
    api.add_exception_handler(Exception, _unexpected)


def _invalid_input(request, exc) -> JsonResponse:
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        where, *field = error["loc"]
        if where == "path":
            # A path that names nothing: /api/payments/not-a-uuid/.
            return problem(404, "Nothing at %s." % request.path)
        if where == "body":
            # ("body", <parameter>, "amount") -> "amount"; ("body", <parameter>) -> "body".
            field = field[1:] or ["body"]
        # ("header", "Idempotency-Key"), ("query", "status"): the header's or parameter's name.
        name = ".".join(str(part) for part in field)
        errors.setdefault(name, []).append(_message(error))
    count = len(errors)
    detail = "1 field is invalid." if count == 1 else "%d fields are invalid." % count
    return problem(400, detail, errors=errors)


def _message(error: dict) -> str:
    if error.get("type") == "extra_forbidden":
        return "Unknown field."
    if error.get("type") == "missing":
        return "This field is required."
    return str(error.get("msg", "Invalid.")).removeprefix("Value error, ")


def _http_error(request, exc) -> JsonResponse:
    # Ninja raises HttpError(400, "Cannot parse request body") from the parser's error,
    # which says what is wrong with the body.
    if exc.status_code == 400 and isinstance(exc.__cause__, BodyNotJson):
        return problem(400, str(exc.__cause__), errors={"body": [str(exc.__cause__)]})
    return problem(exc.status_code, str(exc))


def _unexpected(request, exc):
    # Django logs it (django.request, with the traceback) and answers with handler500,
    # which gives the problem under /api/, in DEBUG too (the middleware).
    raise exc


class BodyNotJson(ValueError):
    """A request body that is not JSON, or JSON this API refuses (see JsonParser)."""
