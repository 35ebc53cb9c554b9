"""Celery beat loads the schedule from settings: each app's periodic task, and
perform_cleanup on a short schedule."""

from config import celery_app


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
    worker.wait_for(r"Cleanup finished \(slot \S+\): expired_sessions=0, failure_facts=0")


def test_every_beat_entry_names_a_registered_task(settings):
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert names == {
        "apps.common.tasks.perform_cleanup",
        "apps.payments.tasks.requeue_pending_payments",
        "apps.delivery.tasks.expire_dead_letters",
    }
    assert names <= set(celery_app.tasks)
