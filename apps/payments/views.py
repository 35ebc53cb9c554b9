"""The payments HTTP API: plain Django views that speak JSON."""

from __future__ import annotations

import json
import uuid

from django.http import JsonResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from . import selectors, services
from .forms import PaymentCreateForm
from .models import Payment

#: The longest Idempotency-Key accepted (the column's length).
KEY_MAX_LENGTH = 255


class JsonView(View):
    """A view whose every answer, errors included, is JSON."""

    def http_method_not_allowed(self, request, *args, **kwargs):
        allowed = self._allowed_methods()
        response = JsonResponse(
            {"error": "method %s not allowed; use %s" % (request.method, ", ".join(allowed))},
            status=405,
        )
        response["Allow"] = ", ".join(allowed)
        return response


@method_decorator(csrf_exempt, name="dispatch")
class PaymentCollectionView(JsonView):
    def post(self, request):
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            return _bad_request({"body": ["Not valid JSON: %s" % exc]})
        if not isinstance(body, dict):
            return _bad_request({"body": ["Send a JSON object."]})
        errors = {
            name: ["Unknown field."]
            for name in sorted(set(body) - set(PaymentCreateForm.base_fields))
        }
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (0 < len(key) <= KEY_MAX_LENGTH and key.isprintable()):
            errors["Idempotency-Key"] = ["Use 1 to %d printable characters." % KEY_MAX_LENGTH]
        form = PaymentCreateForm(body)
        if not form.is_valid() or errors:
            messages = {
                name: [error["message"] for error in field_errors]
                for name, field_errors in form.errors.get_json_data().items()
            }
            return _bad_request({**messages, **errors})
        try:
            payment, created = services.payment_create(**form.cleaned_data, idempotency_key=key)
        except services.IdempotencyKeyReused as exc:
            return JsonResponse({"error": str(exc)}, status=422)
        url = request.build_absolute_uri(reverse("payments:detail", args=[payment.id]))
        response = JsonResponse(
            {"id": str(payment.id), "status": payment.status, "url": url}, status=202
        )
        response["Location"] = url
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response


class PaymentDetailView(JsonView):
    def get(self, request, payment_id):
        try:
            payment = Payment.objects.get(id=uuid.UUID(payment_id))
        except (ValueError, Payment.DoesNotExist):
            return JsonResponse({"error": "no payment %s" % payment_id}, status=404)
        return JsonResponse(selectors.payment_detail(payment=payment))


def _bad_request(errors: dict) -> JsonResponse:
    return JsonResponse({"errors": errors}, status=400)
