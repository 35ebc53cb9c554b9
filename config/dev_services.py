"""Run the development brokers (Redis, RabbitMQ) in the foreground, for honcho and tests.

Usage::

    python -m config.dev_services redis --port 6379 --dir .run/redis
    python -m config.dev_services rabbitmq --port 5672 --dir .run/rabbitmq
    python -m config.dev_services answers postgres://127.0.0.1:5432/db   # exit 0 if it answers

If something already answers on the port (a broker installed as a system service,
say), the command says so and waits until it is stopped, so ``honcho start`` keeps
running and uses that broker. Otherwise it replaces itself with the server, keeping
all of the server's state under ``--dir``.

This module imports nothing from Django: it starts in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

#: Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq user; the upstream
#: script next to it runs as whoever starts it, which is what a dev node needs.
UPSTREAM_RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")

DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "redis": 6379, "amqp": 5672}


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    """Return True if a TCP server accepts connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def rabbitmq_tool(name: str) -> str:
    """Return the path of a RabbitMQ script (``rabbitmq-server``, ``rabbitmqctl``)."""
    upstream = UPSTREAM_RABBITMQ_BIN / name
    if upstream.exists():
        return str(upstream)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not on PATH: install RabbitMQ or use the Nix dev shell.")
    return found


def redis_command(port: int, data_dir: Path, *, persistent: bool = True) -> list[str]:
    """Return the command line of a loopback Redis keeping its files in ``data_dir``."""
    command = [
        shutil.which("redis-server") or "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "",
        # A broker must never drop queued messages to free memory.
        "--maxmemory-policy",
        "noeviction",
    ]
    # Append-only file: queued tasks survive a Redis restart.
    command += ["--appendonly", "yes" if persistent else "no"]
    return command


def rabbitmq_environment(port: int, data_dir: Path, *, node: str) -> dict[str, str]:
    """Return the environment for a RabbitMQ node keeping its state in ``data_dir``.

    The same environment must be given to ``rabbitmqctl`` (node name, cookie in HOME).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    plugins = data_dir / "enabled_plugins"
    if not plugins.exists():
        plugins.write_text("[].\n")
    env = dict(os.environ)
    env.update(
        HOME=str(data_dir),
        RABBITMQ_NODENAME=node,
        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
        RABBITMQ_NODE_PORT=str(port),
        RABBITMQ_DIST_PORT=str(port + 20000),
        RABBITMQ_MNESIA_BASE=str(data_dir / "mnesia"),
        RABBITMQ_LOG_BASE=str(data_dir / "log"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(plugins),
        # The node's own (absent) configuration files, never the system's.
        RABBITMQ_CONF_ENV_FILE=str(data_dir / "rabbitmq-env.conf"),
        RABBITMQ_CONFIG_FILE=str(data_dir / "rabbitmq"),
        RABBITMQ_ADVANCED_CONFIG_FILE=str(data_dir / "advanced.config"),
    )
    return env


def wait_for_stop(name: str, port: int) -> None:
    """Say that another server is in use and sleep until SIGTERM or SIGINT."""
    print(f"{name}: 127.0.0.1:{port} already answers; using that server.", flush=True)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        signal.pause()


def url_answers(url: str) -> bool:
    """Return True if the server named by a URL accepts TCP connections."""
    parts = urlsplit(url)
    return port_answers(
        parts.port or DEFAULT_PORTS.get(parts.scheme, 0), parts.hostname or "127.0.0.1"
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["answers"]:
        # python -m config.dev_services answers URL: exit 0 if the server answers.
        raise SystemExit(0 if url_answers(argv[1]) else 1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=["redis", "rabbitmq"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True, help="where the server keeps its state")
    args = parser.parse_args(argv)

    if port_answers(args.port):
        wait_for_stop(args.service, args.port)
    data_dir = args.dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if args.service == "redis":
        command = redis_command(args.port, data_dir)
        os.execvp(command[0], command)
    node = os.environ.get("RABBITMQ_NODENAME", "conveyor@localhost")
    env = rabbitmq_environment(args.port, data_dir, node=node)
    env["RABBITMQ_LOGS"] = "-"  # to stdout, where honcho shows it
    server = rabbitmq_tool("rabbitmq-server")
    os.execvpe(server, [server], env)


if __name__ == "__main__":
    sys.exit(main())
