"""Celery 5.6's ``rpc://`` result backend, whose result consumer survives a polling timeout.

Waiting for a result (``AsyncResult.get``), the consumer drains the broker connection
with a timeout of about a second. Celery 5.6 takes the ``socket.timeout`` of an empty
second for a lost connection and reconnects, which deletes and declares again the
process's reply queue: a result published in between is dropped, and ``get()`` waits
until its own timeout. Celery 5.7 lets the timeout through as the poll it is.

Named for the ``rpc`` scheme on Celery 5.6 in place of
:mod:`apps.delivery.celery_overrides.results` (``RESULT_BACKENDS``), so ``rpc://``
selects it.
"""

from __future__ import annotations

from contextlib import contextmanager

from celery.backends import rpc

from .. import results


class ResultConsumer(rpc.ResultConsumer):
    @contextmanager
    def reconnect_on_error(self):
        polled_out = None
        with super().reconnect_on_error():
            try:
                yield
            except TimeoutError as exc:
                polled_out = exc  # past Celery's handler, which would reconnect
        if polled_out is not None:
            raise polled_out


class RPCBackend(results.RPCBackend):
    ResultConsumer = ResultConsumer
