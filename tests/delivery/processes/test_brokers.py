"""The Procfile's broker processes start only the broker in use (``--if-used``): the
other says so in one line and waits; a missing server says how to install it."""

import os
import signal
import subprocess
import sys

import pytest

from apps.delivery.processes.brokers import broker_in_use

COMMAND = [sys.executable, "-m", "apps.delivery.processes.brokers"]


def run(service, tmp_path, *, wait_for_line=False, **variables):
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "BROKER")}
    env.update(variables)
    process = subprocess.Popen(
        [*COMMAND, service, "--if-used", "--dir", str(tmp_path / service)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if wait_for_line:
        line = process.stdout.readline()  # it said why, and now it waits
        process.send_signal(signal.SIGTERM)
        return line + process.stdout.read(), process.wait(timeout=10)
    output, _ = process.communicate(timeout=30)
    return output, process.returncode


@pytest.mark.parametrize(
    ("variables", "service", "said"),
    [
        ({}, "rabbitmq", "rabbitmq: not used (the broker is redis://localhost:6379/0); "),
        (
            {"BROKER": "rabbitmq", "RABBITMQ_PORT": "5999"},
            "redis",
            "redis: not used (the broker is amqp://guest:***@localhost:5999//); ",
        ),
        (
            {"CELERY_BROKER_URL": "redis://cache.example:6379/0"},
            "redis",
            "redis: the broker redis://cache.example:6379/0 is another machine's",
        ),
        (
            {"CELERY_BROKER_URL": "amqp://u:secret@node1:5672//;amqp://u:secret@node2:5672//"},
            "rabbitmq",
            "rabbitmq: the broker amqp://u:***@node1:5672//;amqp://u:***@node2:5672// is "
            "another machine's",
        ),
    ],
    ids=["rabbitmq-on-redis", "redis-on-rabbitmq", "remote-redis", "remote-rabbitmq-list"],
)
def test_a_broker_not_in_use_says_so_and_waits(tmp_path, variables, service, said):
    output, status = run(service, tmp_path, wait_for_line=True, **variables)
    assert output.startswith(said)
    assert status == 0
    assert not (tmp_path / service).exists()  # nothing started


def test_the_broker_in_use_without_its_server_says_how_to_install_it(tmp_path):
    # PATH without redis-server (this Python is named by its full path)
    output, status = run("redis", tmp_path, PATH=str(tmp_path), REDIS_PORT="1")
    assert status == 1
    assert output.splitlines()[-1] == (
        "redis: redis-server is not installed (not on PATH). Install it: apt-get install "
        "redis-server (Debian/Ubuntu), brew install redis (macOS), or use the Nix shell "
        "(nix develop)."
    )


def test_a_bad_broker_choice_is_one_line(tmp_path):
    output, status = run("redis", tmp_path, BROKER="kafka")
    assert (output.strip(), status) == (
        "redis: BROKER=kafka: it must be one of redis, rabbitmq.",
        1,
    )


def test_the_broker_url_follows_broker_and_the_ports():
    assert broker_in_use({}) == "redis://localhost:6379/0"
    assert broker_in_use({"REDIS_PORT": "16379"}) == "redis://localhost:16379/0"
    rabbitmq = {"BROKER": "rabbitmq", "RABBITMQ_PORT": "15672"}
    assert broker_in_use(rabbitmq) == "amqp://guest:guest@localhost:15672//"
    assert broker_in_use({**rabbitmq, "CELERY_BROKER_URL": "redis://h:1/0"}) == "redis://h:1/0"
    with pytest.raises(ValueError, match="REDIS_PORT=70000: it must be a port"):
        broker_in_use({"REDIS_PORT": "70000"})
