"""Health checks: /healthz, and the worker's and beat's heartbeats."""

import json
import signal
import subprocess
import sys

import pytest

from tests.processes import BASE_DIR
from tests.servers import wait_until


@pytest.fixture
def broker(own_broker):
    """A broker this module's tests may stop and start."""
    return own_broker


def health(check, env, *args):
    result = subprocess.run(
        [sys.executable, "-m", "apps.delivery.processes.health", check, *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode, json.loads(result.stdout)


def test_healthz_answers_503_while_the_broker_is_down_and_200_once_it_is_back(
    broker, start_web, process_env
):
    web = start_web()
    url = web.url + "/healthz"
    code, report = health("web", process_env, "--url", url)
    assert code == 0
    body = json.loads(report["detail"])
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"]
    assert body["checks"]["broker"]["ok"]
    # when: the broker stops
    broker.server.stop()
    code, report = health("web", process_env, "--url", url)
    assert code == 1
    body = json.loads(report["detail"])
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"]
    assert not body["checks"]["broker"]["ok"]
    assert body["checks"]["broker"]["error"]
    # then: back again
    broker.server.start()
    wait_until(
        lambda: health("web", process_env, "--url", url)[0] == 0, timeout=30, what="200 again"
    )


def test_a_probe_needs_no_allowed_host_and_writes_no_request_line(broker, client, db):
    response = client.get("/healthz", headers={"Host": "10.1.2.3:8000"})
    assert response.status_code == 200
    assert response.json()["checks"]["broker"]["ok"]
    assert "X-Request-ID" not in response


def test_the_worker_heartbeat_says_alive_while_it_consumes(broker, start_worker, process_env):
    code, report = health("worker", process_env)
    assert code == 1
    assert "no worker heartbeat" in report["detail"]
    worker = start_worker()
    assert health("worker", process_env)[0] == 0
    # a worker that stopped cleanly leaves no heartbeat behind
    worker.signal(signal.SIGTERM)
    worker.wait()
    assert health("worker", process_env)[0] == 1
    # a killed worker's heartbeat goes stale
    killed = start_worker()
    killed.kill()
    wait_until(
        lambda: health("worker", process_env, "--max-age", "1")[0] == 1,
        timeout=10,
        what="a stale heartbeat",
    )


def test_the_worker_heartbeat_goes_stale_while_the_broker_is_down(
    broker, start_worker, process_env
):
    start_worker()
    assert health("worker", process_env, "--max-age", "8")[0] == 0
    broker.server.stop()
    wait_until(
        lambda: health("worker", process_env, "--max-age", "8")[0] == 1,
        timeout=40,
        what="the heartbeat of a disconnected worker to go stale",
    )
    broker.server.start()
    wait_until(
        lambda: health("worker", process_env, "--max-age", "8")[0] == 0,
        timeout=60,
        what="the heartbeat to come back with the broker",
    )


def test_the_beat_heartbeat_says_alive_while_it_schedules(broker, start_beat, process_env):
    beat = start_beat()
    wait_until(lambda: health("beat", process_env)[0] == 0, timeout=20, what="beat heartbeat")
    beat.kill()
    wait_until(
        lambda: health("beat", process_env, "--max-age", "1")[0] == 1,
        timeout=10,
        what="a stale heartbeat",
    )
