"""The outbox relay shares the worker's main process with the pool's forks: on SQLite a
fork waits until the relay has finished with the database, so that a new pool process
never inherits SQLite's locks half taken."""

import os
import threading

import pytest
from django.db import connection

from apps.delivery import outbox
from apps.delivery.celery_overrides.bootsteps import OutboxRelay
from apps.delivery.models import OutboxMessage


def fork_in_background() -> threading.Event:
    """Fork this process from another thread, as the worker forks a pool process; the
    event is set once the fork has returned in the parent."""
    forked = threading.Event()

    def fork():
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        forked.set()
        os.waitpid(pid, 0)

    threading.Thread(target=fork, daemon=True).start()
    return forked


@pytest.mark.django_db(transaction=True)
def test_a_fork_waits_while_the_outbox_relay_uses_sqlite(monkeypatch):
    # given: a message in the outbox, and a relay batch held in the middle of it
    OutboxMessage.objects.create(task_name="apps.users.tasks.add", args=[1, 2], kwargs={})
    publishing, finish = threading.Event(), threading.Event()

    def publish(message):
        publishing.set()
        assert finish.wait(30)

    monkeypatch.setattr(outbox, "publish", publish)
    results = []

    def relay():
        results.append(OutboxRelay(None).relay_batch())
        results.append(connection.connection is None)  # this thread's connection

    relay_thread = threading.Thread(target=relay, daemon=True)
    relay_thread.start()
    assert publishing.wait(30)
    # when: the process forks meanwhile
    forked = fork_in_background()
    # then: on SQLite the fork waits for the batch, which closes its connection;
    # PostgreSQL's connections are not shared with a child, and nothing waits
    if connection.vendor == "sqlite":
        assert not forked.wait(0.5), "the fork did not wait for the relay"
        finish.set()
        assert forked.wait(30)
        relay_thread.join(30)
        assert results == [1, True]
    else:
        assert forked.wait(30)
        finish.set()
        relay_thread.join(30)
        assert results[0] == 1
    assert OutboxMessage.objects.get().sent_at is not None
