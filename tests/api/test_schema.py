"""The OpenAPI schema describes the API the code serves: every route is in it, and
schemathesis, fuzzing a running server from it, finds no 5xx and no answer that breaks it."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import get_resolver

HERE = Path(__file__).resolve().parent


def test_the_schema_and_docs_page_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"/api/schema/" in docs.content


def test_every_route_of_the_api_is_in_the_schema_with_its_errors(client):
    schema = client.get("/api/schema/").json()
    # ninja's own routes: the schema, the docs page, and the API's root (a 404).
    own = {"openapi-json", "openapi-view", "api-root"}
    prefix, resolver = get_resolver().namespace_dict["api"]
    routes = {
        "/" + prefix + str(url.pattern) for url in resolver.url_patterns if url.name not in own
    }
    documented = {path.replace("{payment_id}", "<payment_id>") for path in schema["paths"]}
    assert routes == documented
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            errors = {status for status in operation["responses"] if int(status) >= 400}
            assert errors, "%s %s documents no error" % (method.upper(), path)
            for status in errors:
                content = operation["responses"][status]["content"]
                assert list(content) == ["application/problem+json"], (method, path, status)


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_schemathesis_finds_nothing_against_a_running_server(start_web, tmp_path):
    # given the app as in production (DEBUG off), on a real broker and database
    web = start_web(env={"DEBUG": "false"})
    # when schemathesis fuzzes every operation from the schema: valid and invalid input,
    # and stateful sequences (create, then read)
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            web.url + "/api/schema/",
            "--checks",
            "all",
            "--mode",
            "all",
            "--max-examples",
            "40",
            "--seed",
            "2026",
        ],
        cwd=tmp_path,  # its cache of examples
        capture_output=True,
        text=True,
        timeout=600,
    )
    # then it finds nothing, and it did test every operation
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "3 total" in result.stdout or "Tested: 3" in result.stdout, result.stdout[-3000:]
    assert "No issues found" in result.stdout, result.stdout[-3000:]
