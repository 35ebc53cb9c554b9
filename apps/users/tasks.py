"""Tasks of the users app."""

import logging
from numbers import Number

from celery import shared_task

logger = logging.getLogger(__name__)


# Its callers read its result: it keeps one (results are opt-in).
@shared_task(name="apps.users.tasks.add", ignore_result=False)
def add(x, y):
    """Return ``x + y``: the smallest task there is, to check the stack end to end."""
    for name, value in (("x", x), ("y", y)):
        if isinstance(value, bool) or not isinstance(value, Number):
            raise TypeError("add() takes numbers; %s is %r" % (name, value))
    logger.info("Adding %s + %s", x, y)
    return x + y
