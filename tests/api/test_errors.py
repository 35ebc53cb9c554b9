"""Every error under /api/ is a JSON problem with the right status, on a running server,
whoever raised it: the API, Django before the view, or the server's limits."""

import json
import urllib.error
import urllib.request

import pytest

PAYMENT = "/api/payments/6f1c2a8e-0000-4000-8000-000000000000/"

#: (method, path, body, headers, status): the hostile requests, and their answers.
HOSTILE = [
    ("POST", "/api/payments/", b"[" * 100_000 + b"]" * 100_000, {}, 400),
    ("POST", "/api/payments/", b"x" * (10 * 1024 * 1024), {}, 413),
    ("POST", "/api/payments/", b'{"amount": NaN}', {}, 400),
    ("GET", "/api/payments/", None, {"Host": "attacker.example"}, 400),
    ("DELETE", PAYMENT, None, {}, 405),
    ("PUT", PAYMENT, b"{}", {}, 405),
    ("PATCH", PAYMENT, b"{}", {}, 405),
    ("DELETE", "/api/payments/", None, {}, 405),
    ("GET", "/api/payments/not-a-uuid/", None, {}, 404),
    ("GET", PAYMENT, None, {}, 404),
    ("GET", "/api/nothing/", None, {}, 404),
    ("POST", "/api/nothing/", b"{}", {}, 404),
    ("GET", "/api/payments/?page_size=0", None, {}, 400),
]


def call(base_url, method, path, body=None, headers=None):
    request = urllib.request.Request(
        base_url + path,
        data=body,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture(params=["true", "false"], ids=["debug", "production"])
def web(request, start_web):
    """A running web process, in development (DEBUG on) and as in production."""
    return start_web(env={"DEBUG": request.param})


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_hostile_requests_get_a_json_problem_with_the_right_status(web):
    for method, path, body, headers, status in HOSTILE:
        answer, answer_headers, content = call(web.url, method, path, body, headers)
        case = "%s %s -> %s" % (method, path, answer)
        assert answer == status, case
        assert answer_headers["Content-Type"] == "application/problem+json", case
        problem = json.loads(content)
        assert problem["status"] == status, case
        assert problem["title"], case
        assert problem["detail"], case


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_options_head_and_a_missing_slash_answer_as_http_says(web):
    status, headers, _ = call(web.url, "OPTIONS", PAYMENT)
    assert (status, headers["Allow"]) == (204, "GET, HEAD, OPTIONS")
    status, headers, content = call(web.url, "HEAD", "/api/payments/")
    assert (status, content) == (200, b"")
    status, headers, _ = call(web.url, "POST", "/api/payments", b"{}")
    assert (status, headers["Location"]) == (308, "/api/payments/")
