"""``honcho start`` runs the Procfile: brokers, web, worker and beat; Ctrl-C stops them all."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from apps.users.tasks import add
from tests.conftest import database_url, use_broker
from tests.processes import Process
from tests.servers import free_port, wait_until


def processes_with_marker(marker: str) -> list[str]:
    """Command lines of the running processes whose environment holds ``marker``."""
    found = []
    if Path("/proc").is_dir():
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                if marker.encode() in environ:
                    found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue
        return found
    ps = subprocess.run(["ps", "-axE", "-ww", "-o", "command="], capture_output=True, text=True)
    return [line for line in ps.stdout.splitlines() if marker in line]


def honcho_executable() -> str:
    """honcho beside this Python (a virtualenv), else on PATH (the Nix dev shell)."""
    beside = Path(sys.executable).parent / "honcho"
    return str(beside) if beside.exists() else shutil.which("honcho") or "honcho"


def web_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/admin/login/" % port, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def honcho(tmp_path, transactional_db):
    marker = "CONVEYOR_TEST_%s" % uuid.uuid4().hex
    redis_port, web_port = free_port(), free_port()
    rabbitmq_port = free_port(offset=20000)
    env_file = tmp_path / "honcho.env"
    env_file.write_text("")
    env = dict(os.environ)
    env.update(
        {
            marker: "1",
            "PATH": "%s:%s" % (Path(sys.executable).parent, env["PATH"]),
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "RUN_DIR": str(tmp_path / "run"),
            "REDIS_PORT": str(redis_port),
            "RABBITMQ_PORT": str(rabbitmq_port),
            "RABBITMQ_NODENAME": "conveyor-honcho-%d@localhost" % rabbitmq_port,
            "WEB_PORT": str(web_port),
            "CELERY_BROKER_URL": "redis://127.0.0.1:%d/0" % redis_port,
            "CELERY_RESULT_BACKEND": "redis://127.0.0.1:%d/1" % redis_port,
            "DATABASE_URL": database_url(),
            "CLEANUP_SCHEDULE": "2",
        }
    )
    process = Process(
        [honcho_executable(), "--env", str(env_file), "start"],
        env,
        name="honcho",
    )
    process.marker = marker
    process.web_port = web_port
    process.redis_url = env["CELERY_BROKER_URL"]
    process.start()
    yield process
    process.kill()
    for pid_line in processes_with_marker(marker):
        print("left behind:", pid_line)


def test_honcho_runs_the_stack_and_ctrl_c_stops_everything(honcho):
    # given: the whole stack up
    honcho.wait_for(r"worker\.1\s+\|.*\bready\b", timeout=90)
    honcho.wait_for(r"beat\.1\s+\|.*beat: Starting", timeout=60)
    honcho.wait_for(r"rabbitmq\.1\s+\|.*Server startup complete", timeout=90)
    wait_until(lambda: web_answers(honcho.web_port), timeout=30, what="the web process")
    use_broker(honcho.redis_url, honcho.redis_url[:-1] + "1")
    assert add.delay(5, 10).get(timeout=20) == 15
    honcho.wait_for(r"worker\.1\s+\|.*Adding 5 \+ 10")
    honcho.wait_for(r"worker\.1\s+\|.*Cleanup finished", timeout=30)
    # when: Ctrl-C
    honcho.signal(signal.SIGINT)
    # then
    honcho.wait(timeout=30)
    print(honcho.output)
    assert honcho.matching(r"worker\.1\s+\|.*worker: Warm shutdown")
    assert not honcho.matching("SIGKILL")
    wait_until(
        lambda: not processes_with_marker(honcho.marker),
        timeout=10,
        what="every process of the stack to exit",
    )
