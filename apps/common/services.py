"""Housekeeping services run by periodic tasks."""

import logging

from django.contrib.sessions.models import Session
from django.utils import timezone

logger = logging.getLogger(__name__)


def cleanup_run() -> dict[str, int]:
    """Delete what has outlived its retention and return the counts, by kind."""
    expired_sessions, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return {"expired_sessions": expired_sessions}
