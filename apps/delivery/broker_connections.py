"""Connecting to the broker for a check that must not wait (``/healthz``, a scrape, the
console): one attempt at each URL of a failover list, in turn, with no pause between.

kombu's ``Connection.ensure_connection`` switches to the next URL of the list after each
failed attempt and pauses only once it has tried them all (``completes_cycle``); so one
attempt per URL is ``len(connection.alt) - 1`` retries (``alt`` holds the list's URLs,
or nothing for a single URL).
"""

from __future__ import annotations


def connect_once(connection) -> None:
    """Connect ``connection`` to the first of its broker URLs that answers, trying each
    once with no pause; raise the last error when none does."""
    connection.ensure_connection(
        max_retries=max(0, len(connection.alt) - 1),
        interval_start=0,
        interval_step=0,
        interval_max=0,
    )
