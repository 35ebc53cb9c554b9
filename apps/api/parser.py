"""The API's request body parser: JSON, read as exactly as it was written."""

from __future__ import annotations

import json
from decimal import Decimal

from ninja.parser import Parser

from .problems import BodyNotJson


class JsonParser(Parser):
    """Read a body as JSON, whatever its Content-Type (``curl -d`` sends form-encoded).

    JSON numbers with a fraction become ``Decimal`` (``12.10`` stays 12.10, not a binary
    float); ``NaN`` and ``Infinity``, which are not JSON, and nesting deeper than Python
    can parse are refused with :class:`BodyNotJson`, which names the problem.
    """

    def parse_body(self, request):
        try:
            return json.loads(request.body, parse_float=Decimal, parse_constant=_not_json)
        except RecursionError:
            raise BodyNotJson("The JSON body is nested too deeply.") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise BodyNotJson("The body is not valid JSON: %s" % exc) from None


def _not_json(constant: str):
    raise ValueError("%s is not a JSON value" % constant)
