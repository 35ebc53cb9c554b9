"""Correlation ids for web requests."""

from __future__ import annotations

import logging
import time

from .logs.context import correlation, new_correlation_id, valid_correlation_id

logger = logging.getLogger(__name__)


class CorrelationIdMiddleware:
    """Take ``X-Request-ID`` from the request (or make one), log it on every line of the
    request, pass it to the tasks the request enqueues, and return it in the response."""

    header = "X-Request-ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(self.header)
        valid = valid_correlation_id(incoming)
        started = time.monotonic()
        with correlation(valid or new_correlation_id()) as correlation_id:
            if incoming and not valid:
                logger.warning(
                    "Ignored an invalid %s header (%d characters); using %s.",
                    self.header,
                    len(incoming),
                    correlation_id,
                )
            request.correlation_id = correlation_id
            response = self.get_response(request)
            logger.info(
                "%s %s %s",
                request.method,
                request.get_full_path(),
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                },
            )
        response[self.header] = correlation_id
        return response


class HealthCheckMiddleware:
    """Answer ``GET /healthz`` first: no host check, no request log line for probes."""

    path = "/healthz"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.rstrip("/") == self.path:
            from .views import healthz

            return healthz(request)
        return self.get_response(request)
