"""Periodic housekeeping tasks."""

import logging

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(name="apps.common.tasks.perform_cleanup")
def perform_cleanup():
    """Run the housekeeping cleanup and log what it removed."""
    counts = services.cleanup_run()
    logger.info(
        "Cleanup finished: %s",
        ", ".join("%s=%d" % item for item in sorted(counts.items())),
        extra={"counts": counts},
    )
    return counts
