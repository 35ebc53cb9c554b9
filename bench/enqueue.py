"""The cost of enqueueing, in the caller: ``delay()``, and the outbox enqueue of a
request (a row written in the request's transaction, published when it commits).

    python -m bench.enqueue SYSTEM COUNT      # print the times in seconds as JSON

- ``celery``: bare Celery's ``add.delay(1, 1)``;
- ``conveyor``: Conveyor's ``add.delay(1, 1)``, as shipped (publisher confirms on
  RabbitMQ; ``add`` keeps its result);
- ``outbox-sqlite``, ``outbox-postgres``: Conveyor's
  ``enqueue_on_commit("apps.users.tasks.add", 1, 1)`` inside ``transaction.atomic()``:
  the insert, the commit, the publish and its mark as sent, on the database its
  environment names (``DATABASE_URL``).
"""

from __future__ import annotations

import json
import sys
import time


def timings(system: str, count: int) -> list[float]:
    if system == "celery":
        from bench.bare import add

        return _time(lambda: add.delay(1, 1), count)
    import django

    django.setup()
    if system == "conveyor":
        from apps.users.tasks import add

        return _time(lambda: add.delay(1, 1), count)
    from django.db import transaction

    from apps.delivery.outbox import enqueue_on_commit

    def outbox():
        with transaction.atomic():
            enqueue_on_commit("apps.users.tasks.add", 1, 1)

    return _time(outbox, count)


def _time(call, count: int) -> list[float]:
    for _ in range(min(50, count)):  # connections made, code warm
        call()
    result = []
    for _ in range(count):
        began = time.perf_counter()
        call()
        result.append(time.perf_counter() - began)
    return result


if __name__ == "__main__":
    print(json.dumps(timings(sys.argv[1], int(sys.argv[2]))))
