"""Retry delays: exponential, capped, jittered."""

import random

from apps.delivery.retries import backoff_delay


def test_delays_double_up_to_the_cap_with_jitter_between_half_and_all():
    rng = random.Random(7)
    for retries, ceiling in [(0, 5), (1, 10), (2, 20), (3, 40), (6, 100), (12, 100)]:
        delays = [backoff_delay(retries, base=5, cap=100, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not constant


def test_jitter_spreads_retries_of_tasks_that_failed_together():
    delays = {round(backoff_delay(3, base=5, cap=600), 3) for _ in range(50)}
    assert len(delays) > 40
