"""Dramatiq with its defaults: its default middleware, the ``default`` queue, 8 threads
per worker process.

    BENCH_BROKER_URL=... dramatiq bench.dramatiq_app -p 2

The actor returns nothing: without the Results middleware Dramatiq discards a return
value and logs a warning for every message that had one.
"""

import os

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

URL = os.environ["BENCH_BROKER_URL"]

dramatiq.set_broker(RabbitmqBroker(url=URL) if URL.startswith("amqp") else RedisBroker(url=URL))


@dramatiq.actor
def add(x, y):
    """Add ``x`` and ``y``, and keep nothing."""
    _ = x + y
