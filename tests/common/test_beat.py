"""Celery beat loads the schedule from settings and sends perform_cleanup."""


def test_beat_sends_cleanup_on_a_short_schedule_and_a_worker_runs_it(
    broker, start_worker, start_beat
):
    # given: the cleanup schedule set to every second, without editing code
    env = {"CLEANUP_SCHEDULE": "1"}
    worker = start_worker(env=env)
    # when
    beat = start_beat(env=env)
    # then
    beat.wait_for(
        r"Sending due task cleanup-every-midnight \(apps\.common\.tasks\.perform_cleanup\)"
    )
    worker.wait_for(r"Cleanup finished \(slot \S+\): dead_letters=0, expired_sessions=0")
