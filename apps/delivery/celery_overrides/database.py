"""Database connections kept across tasks, as Django keeps them across requests.

Celery's Django fix-up closes every database connection before and after each task
(``DjangoWorkerFixup.close_database``), whatever ``CONN_MAX_AGE`` says: each task of a
worker on PostgreSQL opened a new connection (a fork of a backend and an
authentication). Here a connection is closed only when Django would close it at the
end of a request: if it is unusable, broken in a transaction, or older than
``CONN_MAX_AGE`` (``close_old_connections``; ``CONN_HEALTH_CHECKS`` checks it before
reuse). A pool process still closes what it inherited from its parent
(``on_worker_process_init``, untouched).

Installed by :func:`install`, from ``config/celery.py``.
"""

from __future__ import annotations

from celery.fixups.django import DjangoWorkerFixup


def close_old_connections(self, **kwargs) -> None:
    """``DjangoWorkerFixup.close_database``, with Django's end-of-request rule."""
    from django.db import close_old_connections

    close_old_connections()


def install() -> None:
    DjangoWorkerFixup.close_database = close_old_connections
