"""The web's ``/metrics``: what its processes counted, and what it reads at the scrape."""

from celery import current_app
from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_http_methods
from prometheus_client.exposition import choose_encoder

from ..outbox import outbox_backlog
from .collectors import ScrapeCollector
from .exposition import group_registry, refusal


@require_http_methods(["GET", "HEAD"])
def metrics(request):
    """Prometheus metrics: the web processes' own (:mod:`.instruments`), and the broker's
    queues, the outbox and the heartbeats, read now (:mod:`.collectors`); a source that
    cannot be read is reported as such, never as an error answer.

    Served by ``MetricsMiddleware`` before host validation and request logging, as
    ``/healthz`` is: a scraper may use any address, and a scrape writes no log line.
    ``METRICS_TOKEN`` guards it (:func:`.exposition.refusal`).
    """
    refused = refusal(
        request.headers.get("Authorization"),
        token=settings.METRICS_TOKEN,
        required=settings.METRICS_TOKEN_REQUIRED,
    )
    if refused is not None:
        status, reason = refused
        response = HttpResponse(reason + "\n", status=status, content_type="text/plain")
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = group_registry()
    registry.register(scrape_collector())
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(registry), content_type=content_type)


def scrape_collector() -> ScrapeCollector:
    """What a scrape reads now, for this site: its task queues and the dead-letter queue,
    its outbox, the heartbeats in its RUN_DIR (the operator console's overview too)."""
    return ScrapeCollector(
        app=current_app,
        queues=[*current_app.amqp.queues, settings.DEAD_LETTER_QUEUE],
        run_dir=settings.RUN_DIR,
        outbox_backlog=outbox_backlog,
    )
