"""The container's web process: gunicorn with config/gunicorn.py and production settings."""

import json
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.processes import Process
from tests.servers import free_port, wait_until


@pytest.fixture
def gunicorn(process_env):
    port = free_port()
    env = {
        **process_env,
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEB_PORT": str(port),
        "WEB_CONCURRENCY": "1",
    }
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    process = Process([gunicorn, "-c", "config/gunicorn.py", "config.wsgi"], env, name="gunicorn")
    process.port = port
    process.start()
    process.wait_for("Booting worker", timeout=30)
    yield process
    process.stop()


def test_gunicorn_logs_json_with_the_request_correlation_id(gunicorn):
    url = "http://127.0.0.1:%d/api/payments/unknown/" % gunicorn.port
    request = urllib.request.Request(url, headers={"X-Request-ID": "prod-42"})
    with pytest.raises(urllib.error.HTTPError) as response:
        urllib.request.urlopen(request, timeout=10)
    assert response.value.code == 404
    assert response.value.headers["X-Request-ID"] == "prod-42"
    wait_until(
        lambda: gunicorn.matching("GET /api/payments/unknown/ 404"), timeout=10, what="request"
    )
    gunicorn.stop()
    records = [json.loads(line) for line in gunicorn.lines]
    assert any(r["logger"] == "gunicorn.error" for r in records)
    (line,) = [r for r in records if r["message"] == "GET /api/payments/unknown/ 404"]
    assert line["correlation_id"] == "prod-42"
    assert line["process"] == "web"
