"""Retry delays: exponential backoff with jitter, capped."""

from __future__ import annotations

import random


def backoff_delay(
    retries: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Return the delay, in seconds, before retry number ``retries + 1``.

    The delay doubles with each retry (``base``, ``2 * base``, ``4 * base``, ...) up
    to ``cap``; "equal jitter" then picks a value between half of it and all of it,
    so retries of many tasks that failed together spread out, yet each delay still
    grows.
    """
    ceiling = min(cap, base * 2**retries)
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
