"""Periodic housekeeping tasks."""

import logging

from celery import shared_task

from apps.delivery.periodic import SLOT_HEADER

from . import services

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="apps.common.tasks.perform_cleanup",
    # Sent by beat, the task runs once per slot (apps/delivery/periodic.py); a second
    # beat's delivery for the same slot is skipped with one of these lines.
    duplicate_message="Cleanup skipped: %(key)s already ran.",
    busy_message="Cleanup skipped: %(key)s is being run by task %(holder)s.",
)
def perform_cleanup(self):
    """Run the housekeeping cleanup and log what it did."""
    counts = services.cleanup_run()
    slot = getattr(self.request, SLOT_HEADER, None)
    logger.info(
        "Cleanup finished%s: %s",
        " (slot %s)" % slot if slot else "",
        ", ".join("%s=%d" % item for item in sorted(counts.items())),
        extra={"counts": counts},
    )
    return counts
