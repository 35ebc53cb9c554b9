"""The delivery app's periodic work."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .dead_letters import dead_letter_box

logger = logging.getLogger(__name__)


@shared_task(name="apps.delivery.tasks.expire_dead_letters")
def expire_dead_letters():
    """Purge the dead letters older than ``DEAD_LETTER_RETENTION_DAYS``; keep them all
    for an operator while it is unset. Return how many were purged."""
    days = settings.DEAD_LETTER_RETENTION_DAYS
    if days is None:
        return 0
    with dead_letter_box() as box:
        purged = box.expire(older_than=timezone.now() - timedelta(days=days))
    logger.info("Dead letters older than %d days purged: %d.", days, purged)
    return purged
