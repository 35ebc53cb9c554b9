"""Enqueueing a task by name when the current transaction commits.

A service that starts background work names the task rather than importing it (the
task module imports the service, not the other way round), and sends it only once the
transaction commits: a worker never looks for a row that does not exist yet, and work
from a rolled-back transaction is never done.
"""

from __future__ import annotations

from celery import current_app


def enqueue_on_commit(task_name: str, *args, **kwargs) -> None:
    """Send task ``task_name`` with these arguments once the current transaction commits
    (at once outside a transaction), as its ``delay_on_commit`` does."""
    current_app.tasks[task_name].delay_on_commit(*args, **kwargs)
