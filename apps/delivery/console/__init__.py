"""The operator console, in the admin's look: the overview of the delivery system
(:mod:`.overview`), the work waiting for a retry, and the dead letters
(:mod:`.dead_letters`)."""

from .dead_letters import dead_letter_detail, dead_letter_list
from .overview import overview, retries

__all__ = ["dead_letter_detail", "dead_letter_list", "overview", "retries"]
