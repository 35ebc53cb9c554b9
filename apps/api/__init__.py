"""The HTTP API's shared machinery: one JSON error shape (RFC 9457 problem details) for
everything under ``/api/``, whoever raised the error, and the API's request parser.

The domain apps declare their endpoints (``apps/payments/api.py``); ``config/api.py``
gathers them into one API with its OpenAPI schema and docs page.
"""
