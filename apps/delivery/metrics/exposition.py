"""Serving metrics: who may scrape, and the HTTP server of the worker and of beat.

Every endpoint answers the same way (the web's ``/metrics``, the worker's
``WORKER_METRICS_PORT``, beat's ``BEAT_METRICS_PORT``):

- with ``METRICS_TOKEN`` set, only a request with ``Authorization: Bearer <token>``
  (401 otherwise);
- without one, anyone under development settings (the servers listen on
  ``METRICS_ADDRESS``, 127.0.0.1 by default), and no one under production settings
  (``METRICS_TOKEN_REQUIRED``): 403, saying why.

The worker and beat serve their process group's metrics (:mod:`.directory`) from a
thread of their main process; a port already taken is logged and the process runs on
without metrics.
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.multiprocess import MultiProcessCollector

from .directory import current

logger = logging.getLogger(__name__)


def refusal(authorization: str | None, *, token: str, required: bool) -> tuple[int, str] | None:
    """Why a scrape with this ``Authorization`` header is refused, as (status, reason);
    None when it may proceed."""
    if not token:
        if required:
            return 403, "Metrics are served only with METRICS_TOKEN set (production settings)."
        return None
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    return 401, "Send Authorization: Bearer <METRICS_TOKEN>."


def group_registry() -> CollectorRegistry:
    """A registry of this process group's metrics: every process's files, added up."""
    registry = CollectorRegistry()
    path = current()
    if path is not None:
        MultiProcessCollector(registry, path=str(path))
    return registry


def metrics_app(registry: CollectorRegistry, *, token: str, required: bool):
    """A WSGI application that serves ``registry`` to those :func:`refusal` lets in."""
    exposition = make_wsgi_app(registry)

    def app(environ, start_response):
        refused = refusal(environ.get("HTTP_AUTHORIZATION"), token=token, required=required)
        if refused is None:
            return exposition(environ, start_response)
        status, reason = refused
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        if status == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="metrics"'))
        start_response(
            "%d %s" % (status, "Unauthorized" if status == 401 else "Forbidden"), headers
        )
        return [("%s\n" % reason).encode()]

    return app


class MetricsServer(ThreadingMixIn, WSGIServer):
    """A threaded WSGI server; its request threads never keep the process alive."""

    daemon_threads = True


class MetricsServer6(MetricsServer):
    address_family = socket.AF_INET6


class QuietHandler(WSGIRequestHandler):
    """No line per scrape on stderr."""

    def log_message(self, format, *args):
        pass


def serve(role: str, *, port: int, address: str, token: str, required: bool) -> WSGIServer | None:
    """Serve this process group's metrics on ``address``:``port`` from a daemon thread;
    return the server (``shutdown()`` stops it), or None when the port cannot be had."""
    app = metrics_app(group_registry(), token=token, required=required)
    server_class = MetricsServer6 if ":" in address else MetricsServer
    try:
        server = make_server(address, port, app, server_class, handler_class=QuietHandler)
    except OSError as exc:
        logger.error(
            "The %s's metrics are not served: cannot listen on %s port %d (%s).",
            role,
            address,
            port,
            exc,
        )
        return None
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    logger.info("The %s serves its metrics on %s port %d.", role, address, port)
    return server
