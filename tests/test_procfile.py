"""``honcho start`` runs the Procfile: brokers, web, worker and beat; Ctrl-C stops them all,
and lets the worker finish its task or hand it back."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import termios
import urllib.request
import uuid
from pathlib import Path

import pytest

from apps.users.tasks import add
from tests.conftest import database_url, pointed_at, report_if_failed
from tests.processes import Process
from tests.servers import RedisServer, free_port, wait_until
from tests.tasks import sleep_ignoring_sigterm, sleep_then_return


def processes_with_marker(marker: str) -> dict[int, str]:
    """The running processes whose environment holds ``marker``: pid -> command line."""
    found = {}
    if Path("/proc").is_dir():
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                if marker.encode() in environ:
                    command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    found[int(entry.name)] = command
            except OSError:
                continue
        return found
    ps = subprocess.run(
        ["ps", "-axE", "-ww", "-o", "pid=,command="], capture_output=True, text=True, check=True
    )
    return {
        int(line.split(None, 1)[0]): line.split(None, 1)[1]
        for line in ps.stdout.splitlines()
        if marker in line
    }


def honcho_executable() -> str:
    """honcho beside this Python (a virtualenv), else on PATH (the Nix dev shell)."""
    beside = Path(sys.executable).parent / "honcho"
    return str(beside) if beside.exists() else shutil.which("honcho") or "honcho"


#: What ``make dev`` and the Nix shell give honcho (test_environments checks that they do).
#: Buffered, honcho 2.0 crashes on a Ctrl-C that arrives while it waits to write a line
#: ("RuntimeError: reentrant call"), stops nothing, and hangs.
HONCHO_ENVIRONMENT = {"PYTHONUNBUFFERED": "1"}


def honcho_environment(marker: str) -> dict[str, str]:
    """This environment for honcho, as make dev gives it, with ``marker`` set in every
    process it starts, and this Python first on PATH."""
    return {
        **os.environ,
        **HONCHO_ENVIRONMENT,
        marker: "1",
        "PATH": "%s:%s" % (Path(sys.executable).parent, os.environ["PATH"]),
    }


def kill_processes_with_marker(marker: str) -> None:
    """SIGKILL what a test left running (honcho's children run in sessions of their own,
    so killing honcho alone would leave them running)."""
    for pid, command in processes_with_marker(marker).items():
        print("killing what was left behind:", pid, command)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def web_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/admin/login/" % port, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


class Stack:
    """``honcho start`` in the project, on free ports, with its own RUN_DIR, and its own
    brokers unless it is given the port of one that runs already."""

    def __init__(
        self, tmp_path: Path, *, redis_port: int | None = None, rabbitmq_port: int | None = None
    ):
        self.marker = "CONVEYOR_TEST_%s" % uuid.uuid4().hex
        self.redis_port, self.web_port = redis_port or free_port(), free_port()
        rabbitmq_port = rabbitmq_port or free_port(offset=20000)
        self.env_file = tmp_path / "honcho.env"
        self.env_file.write_text("")
        self.env = {
            **honcho_environment(self.marker),
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "RUN_DIR": str(tmp_path / "run"),
            "REDIS_PORT": str(self.redis_port),
            "RABBITMQ_PORT": str(rabbitmq_port),
            "RABBITMQ_NODENAME": "conveyor-honcho-%d@localhost" % rabbitmq_port,
            "WEB_PORT": str(self.web_port),
            "DATABASE_URL": database_url(),
            "CLEANUP_SCHEDULE": "2",
        }
        # No CELERY_BROKER_URL: the processes follow REDIS_PORT, as under make dev.
        for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "BROKER", "DEV_BROKERS"):
            self.env.pop(name, None)
        self.broker_url = "redis://localhost:%d/0" % self.redis_port
        self.runs: list[Process] = []

    def start(self) -> Process:
        process = Process(
            [honcho_executable(), "--env", str(self.env_file), "start"], self.env, name="honcho"
        )
        self.runs.append(process)
        process.start()
        process.wait_for(r"worker\.1\s+\|.*\bready\b", timeout=90)
        process.wait_for(r"beat\.1\s+\|.*beat: Starting", timeout=60)
        return process

    def ctrl_c(self, process: Process, *, clean: bool = True) -> None:
        """Stop honcho as Ctrl-C does; ``clean``: every process exits before honcho's SIGKILL."""
        process.signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            left = processes_with_marker(self.marker)
            raise AssertionError(
                "honcho still runs 30 s after Ctrl-C; left running: %r\n%s"
                % (left, "\n".join(process.lines[-80:]))
            ) from None
        if clean:
            assert not process.matching("SIGKILL"), process.output
        wait_until(
            lambda: not processes_with_marker(self.marker),
            timeout=10,
            what="every process of the stack to exit",
        )

    def kill(self) -> None:
        """After a failed test: SIGKILL every process of the stack."""
        for process in self.runs:
            process.kill()
        kill_processes_with_marker(self.marker)


@contextlib.contextmanager
def running(stack: Stack, request):
    with pointed_at(stack.broker_url, stack.broker_url.replace("/0", "/1")):
        yield stack
        report_if_failed(request, stack.runs)
        stack.kill()


@pytest.fixture
def stack(request, tmp_path, transactional_db):
    """The stack on Redis (the Procfile's rabbitmq entry idles: not used)."""
    with running(Stack(tmp_path), request) as stack:
        yield stack


@pytest.fixture
def stack_on_a_running_redis(request, tmp_path, transactional_db):
    """The stack on a Redis that ran before it (a system service, say), which the
    Procfile's redis entry only watches."""
    server = RedisServer(tmp_path / "system-redis")
    server.start()
    try:
        stack = Stack(tmp_path, redis_port=server.port)
        with running(stack, request) as stack:
            yield stack
    finally:
        server.stop()


def test_honcho_runs_the_stack_and_ctrl_c_lets_the_running_task_finish(stack):
    # given: the whole stack up
    honcho = stack.start()
    # only the broker in use runs
    assert honcho.matching(
        r"redis\.1\s+\|.*the broker is redis://localhost:%d/0" % stack.redis_port
    )
    assert honcho.matching(r"rabbitmq\.1\s+\|.*rabbitmq: not used \(the broker is redis://")
    wait_until(lambda: web_answers(stack.web_port), timeout=30, what="the web process")
    assert add.delay(5, 10).get(timeout=20) == 15
    honcho.wait_for(r"worker\.1\s+\|.*Adding 5 \+ 10")
    honcho.wait_for(r"worker\.1\s+\|.*Cleanup finished", timeout=30)
    # when: Ctrl-C the moment a 3-second task starts
    result = sleep_then_return.delay(3, "finished")
    honcho.wait_for(r"worker\.1\s+\|.*Sleeping 3 s")
    stack.ctrl_c(honcho, clean=False)
    # then: the warm shutdown let it finish before honcho's 5 s were up (the worker takes
    # a second or two more to exit, so honcho's SIGKILL may reach it: harmless by then)
    assert honcho.matching(r"worker\.1\s+\|.*worker: Warm shutdown")
    lines = honcho.lines
    finished = [
        i for i, line in enumerate(lines) if "sleep_then_return[%s] succeeded" % result.id in line
    ]
    killed = [i for i, line in enumerate(lines) if "sending SIGKILL" in line]
    assert finished
    assert not killed or finished[0] < killed[0]
    # and it was acknowledged: the next start has its result and does not run it again
    again = stack.start()
    assert result.get(timeout=10) == "finished"
    assert add.delay(1, 1).get(timeout=20) == 2
    stack.ctrl_c(again)
    assert not again.matching("Sleeping 3 s")


@pytest.mark.parametrize(
    ("task", "args", "started"),
    [
        # the worker hands it back, and honcho kills what still runs at 5 s
        (sleep_then_return, (8, "long"), "Sleeping 8 s"),
        # Celery's cold shutdown cannot cancel it: the worker dies with the supervisor
        (sleep_ignoring_sigterm, (8,), "deaf to SIGTERM"),
    ],
    ids=["too-long", "ignores-sigterm"],
)
def test_a_task_too_long_for_ctrl_c_runs_again_on_the_next_start_and_finishes_once(
    stack, task, args, started
):
    honcho = stack.start()
    result = task.apply_async(args, ignore_result=True)
    succeeded = r"%s\[%s\] succeeded" % (re.escape(task.name), result.id)
    honcho.wait_for(r"worker\.1\s+\|.*%s" % started)
    # when: Ctrl-C; honcho exits, and no process of the stack is left
    stack.ctrl_c(honcho, clean=False)
    assert not honcho.matching(succeeded), "\n".join(honcho.lines[-40:])
    # then: the next start runs it to the end, once
    again = stack.start()
    again.wait_for(r"worker\.1\s+\|.*%s" % succeeded, timeout=60)
    stack.ctrl_c(again)
    assert len(again.matching(succeeded)) == 1


def test_on_a_redis_the_stack_did_not_start_what_ctrl_c_interrupts_runs_on_the_next_start(
    stack_on_a_running_redis,
):
    # given: the stack on a Redis it did not start (no hand-back when it starts), a task
    # running too long for Ctrl-C, and a countdown waiting in the worker
    stack = stack_on_a_running_redis
    honcho = stack.start()
    assert honcho.matching(r"redis\.1\s+\|.*already answers; using that server")
    running_task = sleep_then_return.apply_async((8, "long"), ignore_result=True)
    honcho.wait_for(r"worker\.1\s+\|.*Sleeping 8 s")
    waiting = add.apply_async((2, 3), countdown=15)
    honcho.wait_for(r"worker\.1\s+\|.*Task %s\[%s\] received" % (re.escape(add.name), waiting.id))
    # when: Ctrl-C, and honcho kills the worker 5 s later
    stack.ctrl_c(honcho, clean=False)
    released = honcho.matching(r"worker\.1\s+\|.*released 2 unacknowledged message")
    assert released, "\n".join(honcho.lines[-60:])
    # then: the next start runs both at once (not after the hour of visibility timeout)
    succeeded = r"%s\[%s\] succeeded" % (re.escape(sleep_then_return.name), running_task.id)
    again = stack.start()
    assert waiting.get(timeout=60) == 5
    again.wait_for(r"worker\.1\s+\|.*%s" % succeeded, timeout=60)
    stack.ctrl_c(again)
    assert len(again.matching(succeeded)) == 1


NOISY = """
import time
for i in range(3000):
    print("line", i, "x" * 100, flush=True)
time.sleep(600)
"""


def blocked_writing(process: subprocess.Popen) -> bool:
    """Whether ``process`` waits to write to its stdout pipe, which nobody reads."""
    wait_channel = Path("/proc/%d/wchan" % process.pid)
    if wait_channel.exists():  # Linux
        return "pipe_write" in wait_channel.read_text()
    # elsewhere: the pipe holds 16 KiB at least (the smallest pipe buffer there is)
    return bytes_waiting(process.stdout) >= 16384


def bytes_waiting(stream) -> int:
    """Bytes waiting to be read from ``stream``."""
    return struct.unpack("i", fcntl.ioctl(stream, termios.FIONREAD, b"\0" * 4))[0]


def test_ctrl_c_while_honcho_waits_to_write_its_output_stops_everything(tmp_path):
    # given: honcho as make dev runs it, with more output than its pipe holds, unread
    (tmp_path / "noisy.py").write_text(NOISY)
    (tmp_path / "Procfile").write_text(
        "noisy: python noisy.py\nquiet: python -c 'import time; time.sleep(600)'\n"
    )
    marker = "CONVEYOR_TEST_%s" % uuid.uuid4().hex
    honcho = subprocess.Popen(
        [honcho_executable(), "start"],
        cwd=tmp_path,
        env=honcho_environment(marker),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: blocked_writing(honcho), timeout=30, what="honcho to block")
        # when: Ctrl-C while honcho waits to write, then its output is read again
        honcho.send_signal(signal.SIGINT)
        output, _ = honcho.communicate(timeout=30)
    finally:
        kill_processes_with_marker(marker)
    # then: honcho stopped both processes and exited
    text = output.decode(errors="replace")
    assert "reentrant call" not in text
    assert re.search(r"noisy\.1 stopped", text), text[-2000:]
    assert re.search(r"quiet\.1 stopped", text), text[-2000:]
