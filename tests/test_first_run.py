"""The first ten minutes: ``make dev`` on non-default ports starts only the broker in use,
the README's check prints 15, nothing reaches a decoy broker on the default ports, and
Ctrl-C ends it cleanly.

Each run has a network of its own (a Linux network namespace, ``unshare --net``), so the
default ports are free for the decoys whatever runs on the machine. Without namespaces
(macOS, a container that forbids them) the test is skipped, as docs/tests.md says.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from tests.first_run import PORTS


def unshare_argv() -> list[str]:
    """The command that runs a process in a new network namespace here, if any does."""
    unshare = shutil.which("unshare")
    if unshare is None or sys.platform != "linux":
        pytest.skip("no Linux network namespaces here (unshare): see docs/tests.md")
    argv = [unshare, "--net"] if os.geteuid() == 0 else [unshare, "--net", "--map-root-user"]
    if subprocess.run([*argv, "true"], capture_output=True).returncode != 0:
        pytest.skip("network namespaces are not allowed here: see docs/tests.md")
    return argv


@pytest.mark.broker
@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
def test_make_dev_on_other_ports_and_the_readme_check(kind, tmp_path):
    # given: decoys on the default broker ports; when: make dev on other ports, the
    # README's check in another shell, then Ctrl-C
    run = subprocess.run(
        [*unshare_argv(), sys.executable, "-m", "tests.first_run", kind, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    output = "".join(outcome["output"])
    # then: the check printed 15
    assert outcome.get("check_output") == "15", (outcome, output[-4000:])
    # only the broker in use ran, on its port, and said so
    port = PORTS["REDIS_PORT" if kind == "redis" else "RABBITMQ_PORT"]
    other = "rabbitmq" if kind == "redis" else "redis"
    assert "%s.1" % kind in output
    assert ":%d/" % port in output
    assert "%s: not used" % other in output
    # nothing reached the decoys
    assert outcome["decoy_connections"] == {"redis": 0, "rabbitmq": 0}
    # Ctrl-C: make ends with the signal, as a Ctrl-C'd command does, and says nothing
    # of an error ("make: *** [dev] Error 130")
    assert outcome["make_status"] in (0, -signal.SIGINT), output[-3000:]
    assert "make: ***" not in output
    print("seconds from make dev to the check's result:", outcome["seconds_to_result"])
