"""Validation of payment requests."""

from decimal import Decimal

from django import forms
from django.core.validators import RegexValidator

from .gateway import TOKENS


class PaymentCreateForm(forms.Form):
    """The body of ``POST /api/payments/``."""

    amount = forms.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01"), localize=False
    )
    currency = forms.CharField(
        validators=[
            RegexValidator(r"^[A-Z]{3}\Z", "Use a three-letter ISO 4217 code such as EUR.")
        ],
    )
    source = forms.ChoiceField(choices=[(token, token) for token in TOKENS], required=False)

    def __init__(self, data: dict):
        # JSON numbers arrive as int/float, which DecimalField would accept with their
        # binary rounding: read their text instead. JSON true/false are not amounts.
        data = dict(data)
        if isinstance(data.get("amount"), bool):
            data["amount"] = "not a number"
        elif isinstance(data.get("amount"), (int, float)):
            data["amount"] = repr(data["amount"])
        super().__init__(data)

    def clean_source(self):
        return self.cleaned_data["source"] or "tok_ok"
