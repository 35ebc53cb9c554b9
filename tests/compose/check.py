"""``python -m tests.compose.check``: the docker-compose stack, verified step by step as a
new user would, on Redis and then on RabbitMQ (``make compose-check``).

Each broker gets its own compose project (a unique name, free host ports), so the check
never touches a stack a developer runs, and ``down -v`` at the end, whatever happened.
Every step prints ``ok`` or ``FAIL`` with what it saw; the run exits non-zero if a step
failed. It talks to the stack only as a user does: ``docker compose`` (or
``docker-compose``), ``docker``, and HTTP on the published web port.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.servers import free_port

BASE_DIR = Path(__file__).resolve().parents[2]
BROKERS = {
    "redis": "redis://redis:6379/0",
    "rabbitmq": "amqp://conveyor:conveyor@rabbitmq:5672//",
}
#: The services that must become healthy; ``migrate`` must exit 0 instead.
HEALTHY = ("redis", "rabbitmq", "postgres", "web", "worker", "beat")
#: docker-compose 1.29 builds with the docker CLI, which needs BuildKit for the Dockerfile.
BUILD_ENV = {"COMPOSE_DOCKER_CLI_BUILD": "1", "DOCKER_BUILDKIT": "1"}
#: The services whose every log line must be JSON.
JSON_SERVICES = ("web", "worker", "beat")


class Failed(Exception):
    """A step saw something other than what it expects."""


def compose_command() -> list[str]:
    """``docker compose`` (v2) when the docker CLI has it, else ``docker-compose`` (v1)."""
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if v2.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise SystemExit("Neither `docker compose` nor `docker-compose` is installed.")


class Stack:
    """One compose project of the project's ``docker-compose.yml``."""

    def __init__(self, broker: str, compose: list[str]):
        self.broker = broker
        self.project = "conveyor-check-%s-%s" % (broker, uuid.uuid4().hex[:6])
        self.web_port = free_port()
        self.compose = [*compose, "--project-name", self.project]
        self.env = {
            **os.environ,
            "CELERY_BROKER_URL": BROKERS[broker],
            "WEB_PORT": str(self.web_port),
            "RABBITMQ_MANAGEMENT_PORT": str(free_port()),
            # beat sends the cleanup every minute, so that the check sees the worker run it
            "CLEANUP_SCHEDULE": "* * * * *",
            **BUILD_ENV,
        }
        self.env.pop("DATABASE_URL", None)

    def run(self, *args: str, timeout: float = 300, check: bool = True, **env) -> str:
        result = subprocess.run(
            [*self.compose, *args],
            cwd=BASE_DIR,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode:
            raise Failed(
                "`%s` exited %d: %s"
                % (" ".join(args), result.returncode, (result.stderr or result.stdout)[-2000:])
            )
        return result.stdout

    def shell(self, code: str) -> str:
        """``exec web python manage.py shell -c CODE``: what it printed."""
        return self.run(
            "exec", "-T", "web", "python", "manage.py", "shell", "-c", code, timeout=180
        )

    def containers(self, service: str, *, stopped: bool = False) -> list[str]:
        """The service's container ids: running ones, or with ``stopped`` all of them."""
        return self.run("ps", *["-a"] * stopped, "-q", service).split()

    def state(self) -> dict[str, list[tuple[str, str, int]]]:
        """Each service's containers: (status, health, exit code)."""
        states: dict[str, list[tuple[str, str, int]]] = {}
        ids = self.run("ps", "-a", "-q").split()
        if not ids:
            return states
        out = subprocess.run(
            ["docker", "inspect", *ids], capture_output=True, text=True, check=True
        ).stdout
        for container in json.loads(out):
            service = container["Config"]["Labels"]["com.docker.compose.service"]
            health = (container["State"].get("Health") or {}).get("Status", "")
            states.setdefault(service, []).append(
                (container["State"]["Status"], health, container["State"]["ExitCode"])
            )
        return states

    def logs(self, service: str) -> list[str]:
        """The output of the service's containers, line by line (``docker logs``)."""
        lines = []
        for container in self.containers(service, stopped=True):
            lines += self.container_logs(container)
        return lines

    @staticmethod
    def container_logs(container: str) -> list[str]:
        result = subprocess.run(
            ["docker", "logs", container], capture_output=True, text=True, check=True
        )
        return (result.stdout + result.stderr).splitlines()

    def wait_for_log(
        self, service: str, pattern: str, *, timeout: float = 60, containers: int = 1
    ) -> str:
        """The first line of the service's logs matching ``pattern``, polled for until
        ``containers`` of its containers have written one."""
        deadline = time.monotonic() + timeout
        while True:
            found = []
            for container in self.containers(service, stopped=True):
                lines = self.container_logs(container)
                found += [line for line in lines if re.search(pattern, line)][:1]
            if len(found) >= containers:
                return found[0]
            if time.monotonic() > deadline:
                raise Failed(
                    "no line of `logs %s` matches %r in %d s" % (service, pattern, timeout)
                )
            time.sleep(1)

    def http(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.web_port, path),
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def fetch(self, method: str, path: str, body: bytes | None = None):
        """(status, content type, body) of any answer, an error's included."""
        request = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.web_port, path), data=body, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers["Content-Type"], response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers["Content-Type"], error.read()

    def post_payment(self, source: str = "tok_ok") -> str:
        answer = self.http(
            "POST", "/api/payments/", {"amount": "12.50", "currency": "EUR", "source": source}
        )
        return answer["id"]

    def payment_status(self, payment_id: str, *, until: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            status = self.http("GET", "/api/payments/%s/" % payment_id)["status"]
            if status == until or time.monotonic() > deadline:
                return status
            time.sleep(0.5)

    def leftovers(self) -> list[str]:
        """What of the project is still there: containers, volumes, networks."""
        label = "label=com.docker.compose.project=%s" % self.project
        found = []
        for kind in (["ps", "-a"], ["volume", "ls"], ["network", "ls"]):
            out = subprocess.run(
                ["docker", *kind, "-q", "--filter", label], capture_output=True, text=True
            ).stdout.split()
            found += ["%s %s" % (kind[0], name) for name in out]
        return found


# -- the steps --------------------------------------------------------------------------


def up_and_healthy(stack: Stack) -> str:
    stack.run("up", "-d", timeout=600)
    deadline = time.monotonic() + 180
    while True:
        states = stack.state()
        migrate = states.get("migrate", [])
        waiting = [
            s for s in HEALTHY if not states.get(s) or any(h != "healthy" for _, h, _ in states[s])
        ]
        migrated = bool(migrate) and all(st == "exited" and code == 0 for st, _, code in migrate)
        if not waiting and migrated:
            return "every service healthy, migrate exited 0"
        if any(st == "exited" and code for st, _, code in migrate):
            raise Failed("migrate exited non-zero: %s" % "\n".join(stack.logs("migrate")[-20:]))
        if time.monotonic() > deadline:
            raise Failed("not healthy after 180 s: %s; states %s" % (waiting, states))
        time.sleep(2)


def add_from_the_shell(stack: Stack) -> str:
    out = stack.shell("from apps.users.tasks import add; print(add.delay(5, 10).get(timeout=10))")
    if out.strip() != "15":
        raise Failed("the shell printed %r, not 15" % out)
    line = stack.wait_for_log("worker", r"Adding 5 \+ 10", timeout=30)
    return "shell printed 15; worker logged %s" % json.loads(line)["message"]


def beat_names_its_schedule(stack: Stack) -> str:
    stack.wait_for_log("beat", r"Scheduled cleanup-every-midnight", timeout=30)
    return "beat named cleanup-every-midnight at start"


def cleanup_runs(stack: Stack) -> str:
    line = stack.wait_for_log("worker", r"Cleanup finished", timeout=90)
    return "worker: %s (schedule * * * * *)" % json.loads(line)["message"]


def payment_processed_once(stack: Stack) -> str:
    payment_id = stack.post_payment()
    status = stack.payment_status(payment_id, until="processed")
    if status != "processed":
        raise Failed("payment %s is %s after 60 s" % (payment_id, status))
    charges = [
        line for line in stack.logs("worker") if "Gateway charged" in line and payment_id in line
    ]
    if len(charges) != 1:
        raise Failed("payment %s charged %d times" % (payment_id, len(charges)))
    return "payment %s processed, charged once" % payment_id


def api_schema_docs_and_problems(stack: Stack) -> str:
    status, _, body = stack.fetch("GET", "/api/schema/")
    if status != 200 or not json.loads(body)["openapi"].startswith("3."):
        raise Failed("GET /api/schema/ answered %s" % status)
    status, _, body = stack.fetch("GET", "/api/docs/")
    script = re.search(rb'src="(/static/[^"]+\.js)"', body)
    if status != 200 or script is None:
        raise Failed("GET /api/docs/ answered %s without its script" % status)
    status, _, _ = stack.fetch("GET", script.group(1).decode())
    if status != 200:
        raise Failed("the docs page's %s answered %s" % (script.group(1).decode(), status))
    status, content_type, body = stack.fetch("POST", "/api/payments/", b"[" * 100_000)
    if (status, content_type) != (400, "application/problem+json"):
        raise Failed("a hostile body answered %s %s" % (status, content_type))
    return "schema, docs page (with its static files) and a JSON problem for a hostile body"


def retry_after_its_delay(stack: Stack) -> str:
    payment_id = stack.post_payment(source="tok_flaky")
    status = stack.payment_status(payment_id, until="processed")
    retry = [line for line in stack.logs("worker") if re.search(r"retry: Retry in", line)]
    if status != "processed" or not retry:
        raise Failed(
            "tok_flaky payment %s is %s; retries logged: %d" % (payment_id, status, len(retry))
        )
    return "worker: %s; then processed" % json.loads(retry[-1])["message"][:120]


def warm_shutdown_finishes_the_charge(stack: Stack) -> str:
    # the worker again, its gateway answering after 5 s
    stack.run("up", "-d", "--no-deps", "worker", GATEWAY_LATENCY_MS="5000", timeout=300)
    stack.wait_for_log("worker", r"\bready\b", timeout=90)
    payment_id = stack.post_payment()
    stack.wait_for_log("worker", r"Charging payment %s" % payment_id, timeout=60)
    started = time.monotonic()
    stack.run("stop", "worker", timeout=400)
    seconds = time.monotonic() - started
    stack.wait_for_log("worker", r"Warm shutdown", timeout=5)
    stack.wait_for_log("worker", r"Payment %s processed" % payment_id, timeout=5)
    lines = json_lines(stack, ["worker"])  # the shutdown's lines included
    stack.run("up", "-d", "--no-deps", "worker", timeout=300)
    return "stop took %.1f s: Warm shutdown, the charge finished, %d lines JSON" % (seconds, lines)


def json_lines(stack: Stack, services) -> int:
    """Check that every line the services' containers wrote is JSON; return how many."""
    counted = 0
    for service in services:
        for line in stack.logs(service):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except ValueError:
                raise Failed(
                    "a line of `logs %s` is not JSON: %r" % (service, line[:300])
                ) from None
            counted += 1
    return counted


def every_line_json(stack: Stack) -> str:
    return "%d lines of web, worker and beat, each JSON" % json_lines(stack, JSON_SERVICES)


def scaled_workers_share(stack: Stack) -> str:
    stack.run("up", "-d", "--no-deps", "--scale", "worker=2", "worker", timeout=300)
    workers = stack.containers("worker")
    if len(workers) != 2:
        raise Failed("%d worker containers, not 2" % len(workers))
    stack.wait_for_log("worker", r"\bready\b", timeout=90, containers=2)
    stack.shell(
        "from apps.users.tasks import add\n"
        "results = [add.delay(i, 1000) for i in range(40)]\n"
        "print(sum(r.get(timeout=60) for r in results))"
    )
    shares = []
    for container in workers:
        lines = stack.container_logs(container)
        shares.append(sum(1 for line in lines if re.search(r"Adding \d+ \+ 1000", line)))
    if sum(shares) != 40 or min(shares) == 0:
        raise Failed("40 tasks shared as %s" % shares)
    return "40 tasks shared %s" % "/".join(map(str, shares))


CONSOLE_CHECK = """
import json
from django.contrib.auth.models import User
from django.test import Client
from apps.delivery.process_reports import process_reports
running = [entry["report"] for entry in process_reports() if entry["condition"] == "running"]
user = User.objects.filter(username="console-check").first()
user = user or User.objects.create_superuser("console-check", "check@example.com", None)
client = Client(HTTP_HOST="localhost")
client.force_login(user)
page = client.get("/admin/console/", secure=True).content.decode()
print(json.dumps([[r.role, r.node, 'id="%s-%s"' % (r.role, r.node) in page] for r in running]))
"""


def console_sees_every_worker(stack: Stack) -> str:
    """The operator console, in the web container, lists the workers of both worker
    containers and beat, from their reports through the database."""
    reports = json.loads(stack.shell(CONSOLE_CHECK).strip().splitlines()[-1])
    workers = {node for role, node, _ in reports if role == "worker"}
    beats = {node for role, node, _ in reports if role == "beat"}
    hidden = [node for _, node, shown in reports if not shown]
    if len(workers) != 2 or len(beats) != 1 or hidden:
        raise Failed("running reports %s; not on the overview: %s" % (reports, hidden))
    return "the overview lists workers %s and beat %s" % (", ".join(sorted(workers)), *beats)


def nothing_left(stack: Stack) -> str:
    stack.run("down", "-v", "--remove-orphans", timeout=300)
    left = stack.leftovers()
    if left:
        raise Failed("left after down -v: %s" % ", ".join(left))
    return "down -v left no container, volume or network"


STEPS = (
    up_and_healthy,
    add_from_the_shell,
    beat_names_its_schedule,
    payment_processed_once,
    api_schema_docs_and_problems,
    retry_after_its_delay,
    cleanup_runs,
    warm_shutdown_finishes_the_charge,
    scaled_workers_share,
    console_sees_every_worker,
    every_line_json,
    nothing_left,
)


def check(broker: str, compose: list[str]) -> bool:
    stack = Stack(broker, compose)
    print("== %s: project %s, web on port %d" % (broker, stack.project, stack.web_port), flush=True)
    passed = True
    try:
        for step in STEPS:
            started = time.monotonic()
            try:
                said = step(stack)
            except (Failed, OSError, subprocess.SubprocessError, KeyError, ValueError) as exc:
                print("FAIL %s: %s: %s" % (step.__name__, type(exc).__name__, exc), flush=True)
                passed = False
                break
            print(
                "ok   %-34s %5.1f s  %s" % (step.__name__, time.monotonic() - started, said),
                flush=True,
            )
    finally:
        if stack.leftovers():
            stack.run("down", "-v", "--remove-orphans", timeout=300, check=False)
    return passed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", action="append", choices=sorted(BROKERS))
    args = parser.parse_args(argv)
    compose = compose_command()
    started = time.monotonic()
    print("building the image (%s build)" % " ".join(compose), flush=True)
    build = subprocess.run(
        [*compose, "build"],
        cwd=BASE_DIR,
        env={**os.environ, **BUILD_ENV},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if build.returncode:
        print((build.stdout + build.stderr)[-5000:])
        print("compose check: the image did not build (exit %d)" % build.returncode)
        return 1
    results = {broker: check(broker, compose) for broker in args.broker or ["redis", "rabbitmq"]}
    print(
        "compose check: %s in %d s"
        % (
            ", ".join("%s %s" % (b, "passed" if ok else "FAILED") for b, ok in results.items()),
            time.monotonic() - started,
        )
    )
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
