"""Keyset pagination: a page ends with an opaque cursor that names its last item.

Unlike an offset, a cursor stays right while rows are added: the next page starts after
the item the last one ended with, whatever was inserted since.
"""

from __future__ import annotations

import base64
import binascii
import json


class InvalidCursor(ValueError):
    """A cursor this API did not make."""


def cursor_encode(*values: str) -> str:
    """An opaque, URL-safe cursor holding ``values``."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def cursor_decode(cursor: str, *, size: int) -> list[str]:
    """The ``size`` values a cursor holds; raises :class:`InvalidCursor`."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise InvalidCursor("Not a cursor this API made: use a page's `next`.") from None
    if not (
        isinstance(values, list)
        and len(values) == size
        and all(isinstance(value, str) for value in values)
    ):
        raise InvalidCursor("Not a cursor this API made: use a page's `next`.")
    return values


def page_url(request, cursor: str) -> str:
    """The request's absolute URL with ``cursor`` in place of its own."""
    query = request.GET.copy()
    query["cursor"] = cursor
    return request.build_absolute_uri("%s?%s" % (request.path, query.urlencode()))
