"""The HTTP API: the domain apps' endpoints under ``/api/``, with an OpenAPI 3 schema at
``/api/schema/`` and a docs page at ``/api/docs/``. Errors answer as problem details
(apps/api/problems.py)."""

from apps.api.base import ProblemDetailsAPI
from apps.payments.api import router as payments

api = ProblemDetailsAPI(
    title="Conveyor",
    version="1",
    description=(
        "Payments processed in the background, charged exactly once. Every error is an "
        "RFC 9457 problem (`application/problem+json`)."
    ),
    urls_namespace="api",
    openapi_url="/schema/",
    docs_url="/docs/",
)
api.add_router("/payments/", payments)
