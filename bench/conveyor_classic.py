"""Conveyor's development settings with a classic task queue instead of a quorum queue,
for the benchmark's ablations (``conveyor-classic``, ``conveyor-classic-prefetch4``):
what the quorum queue costs on RabbitMQ.

Not a configuration Conveyor supports: a classic queue keeps no delivery count, so the
worker's delivery limit (the quorum queue's ``x-delivery-count``) has nothing to read,
its dead-lettering is at most once, and it is not replicated in a cluster.
"""

import copy

from config.settings.dev import *  # noqa: F403
from config.settings.dev import CELERY_TASK_QUEUES

CLASSIC_ARGUMENTS = ("x-dead-letter-exchange", "x-dead-letter-routing-key", "x-overflow")
(_shipped,) = CELERY_TASK_QUEUES
_classic = copy.copy(_shipped)
_classic.queue_arguments = {k: _shipped.queue_arguments[k] for k in CLASSIC_ARGUMENTS}
CELERY_TASK_QUEUES = (_classic,)
