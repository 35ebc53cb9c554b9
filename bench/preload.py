"""Fill a system's queue with ``add(1, 1)`` messages, with the system's own client, in a
process of its own (each system's client reads its configuration as it imports).

    BENCH_BROKER_URL=... python -m bench.preload SYSTEM COUNT

Celery apps publish with one producer connection; Conveyor calls its task's
``delay()`` as the application would (with Conveyor's settings from the environment).
"""

from __future__ import annotations

import os
import sys


def floor(count: int) -> None:
    from bench import floor

    floor.preload(os.environ["BENCH_BROKER_URL"], count)


def celery_app(name: str, count: int) -> None:
    from importlib import import_module

    module = import_module(name)
    with module.app.producer_or_acquire() as producer:
        for _ in range(count):
            module.add.apply_async((1, 1), producer=producer)


def dramatiq(count: int) -> None:
    from bench.dramatiq_app import add

    for _ in range(count):
        add.send(1, 1)


def conveyor(count: int, *, result: bool = False) -> None:
    """``add(1, 1)`` as a task of Conveyor's that keeps no result (the default), or, with
    ``result``, as shipped: ``add`` keeps its result, with STARTED."""
    import django

    django.setup()
    from apps.users.tasks import add

    for _ in range(count):
        add.apply_async((1, 1), ignore_result=not result)


def payments(count: int) -> None:
    """``count`` payments, as ``POST /api/payments/`` creates them."""
    from decimal import Decimal

    import django

    django.setup()
    from apps.payments import services

    for _ in range(count):
        services.payment_create(amount=Decimal("10.00"), currency="EUR")


PRELOADS = {
    "floor": floor,
    "celery": lambda count: celery_app("bench.bare", count),
    "cookiecutter": lambda count: celery_app("bench.cookiecutter", count),
    "dramatiq": dramatiq,
    "conveyor": conveyor,
    "conveyor-results": lambda count: conveyor(count, result=True),
    "payments": payments,
}


if __name__ == "__main__":
    system, count = sys.argv[1], int(sys.argv[2])
    PRELOADS[system](count)
