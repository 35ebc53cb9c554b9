"""The container's web process: gunicorn with config/gunicorn.py and production settings."""

import json
import urllib.request

import pytest

from tests.servers import wait_until


@pytest.fixture
def gunicorn(start_gunicorn):
    return start_gunicorn()


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
