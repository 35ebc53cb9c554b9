"""Correlation ids for web requests, and the operator endpoints answered before anything
else (`/healthz`, `/metrics`)."""

from __future__ import annotations

import logging
import time

from django.utils.module_loading import import_string

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


class EndpointMiddleware:
    """Answer one operator path first, before host validation and request logging, with
    the view ``view`` names (imported on first use)."""

    path = ""
    view = ""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.rstrip("/") == self.path:
            return import_string(self.view)(request)
        return self.get_response(request)


class HealthCheckMiddleware(EndpointMiddleware):
    """Answer ``GET /healthz`` first: no host check, no request log line for probes."""

    path = "/healthz"
    view = "apps.delivery.views.healthz"


class MetricsMiddleware(EndpointMiddleware):
    """Answer ``/metrics`` (Prometheus) first: any host may be used to scrape, and a
    scrape writes no request log line. ``METRICS_TOKEN`` guards it, not the host."""

    path = "/metrics"
    view = "apps.delivery.metrics.views.metrics"
