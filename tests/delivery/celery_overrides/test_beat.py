"""Conveyor's beat scheduler: two beats by mistake still run each slot once."""

import re


def test_two_beats_run_the_cleanup_once_per_slot(broker, start_worker, start_beat):
    # given: two beats by mistake, both on a 1-second schedule
    env = {"CLEANUP_SCHEDULE": "1"}
    worker = start_worker(env=env, concurrency=2)
    start_beat(env=env)
    start_beat(env=env)
    # when
    worker.wait_for(
        r"Cleanup skipped: beat:apps\.common\.tasks\.perform_cleanup:", count=2, timeout=30
    )
    # then: no slot ran twice
    worker.stop()
    slots = [
        re.search(r"\(slot (\S+)\)", line).group(1) for line in worker.matching("Cleanup finished")
    ]
    assert len(slots) >= 2
    assert len(slots) == len(set(slots))
    skipped = [
        re.search(r"perform_cleanup:(\S+) (already ran|is being run by task)", line).group(1)
        for line in worker.matching("Cleanup skipped")
    ]
    assert set(skipped) <= set(slots)
