"""``ProblemDetailsAPI``: a ``NinjaAPI`` whose errors are problem details, in its answers
and in its OpenAPI schema."""

from __future__ import annotations

from ninja import NinjaAPI

from . import problems
from .parser import JsonParser


class ProblemDetailsAPI(NinjaAPI):
    """Answers every error as a problem (:func:`problems.install`), reads bodies with
    :class:`JsonParser`, and documents error answers as ``application/problem+json``
    (ninja documents every answer with its renderer's media type)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("parser", JsonParser())
        super().__init__(**kwargs)
        problems.install(self)

    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        answer["content"] = {problems.CONTENT_TYPE: content["application/json"]}
        return schema
