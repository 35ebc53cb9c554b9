"""Run the development brokers (Redis, RabbitMQ) in the foreground, for honcho and tests.

Usage::

    python -m apps.delivery.processes.brokers redis --if-used --dir .run/redis
    python -m apps.delivery.processes.brokers rabbitmq --if-used --dir .run/rabbitmq
    python -m apps.delivery.processes.brokers redis --port 6379 --dir .run/redis
    python -m apps.delivery.processes.brokers answers postgres://127.0.0.1:5432/db  # exit 0: up

With ``--if-used`` (the Procfile's way) a broker starts only if the project uses it, on
the port its URL names: the broker URL is ``CELERY_BROKER_URL``, or when that is unset the
development default for ``BROKER`` (``redis``, the default, or ``rabbitmq``) on
``REDIS_PORT`` / ``RABBITMQ_PORT`` (:func:`development_broker_url`, which the settings
use too). The broker not in use says so in one line and waits (``DEV_BROKERS=all`` starts
both); so does one whose URL names another machine. A broker in use whose server is not
installed stops with one line saying how to install it.

If something already answers on the port (a broker installed as a system service,
say), the command says so and waits until it is stopped, so ``honcho start`` keeps
running and uses that broker. Otherwise it runs the server, keeping all of its state
under ``--dir``.

Stopping (SIGTERM or SIGINT, as honcho sends on Ctrl-C) waits until the broker's clients
have gone, for up to ``DEV_BROKER_STOP_WAIT_SECONDS`` (Redis: 4.5 s, which stops at once;
RabbitMQ: 3 s, which takes a second or two to stop; both inside honcho's 5): the
worker, which stops at the same moment, still needs the broker to acknowledge the task
it finishes, and on Redis to take back the tasks it hands back, or those would wait for
the visibility timeout.

The tests start their throwaway brokers with the same commands and environment.
This module imports nothing from Django: it starts in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from ..logs.context import mask_passwords
from .supervise import die_with_parent

#: Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq user; the upstream
#: script next to it runs as whoever starts it, which is what a dev node needs.
UPSTREAM_RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")

DEFAULT_PORTS = {
    "postgres": 5432,
    "postgresql": 5432,
    "redis": 6379,
    "rediss": 6379,
    "amqp": 5672,
    "amqps": 5671,
}
#: The development brokers, by the kind ``BROKER`` names.
BROKERS = ("redis", "rabbitmq")
#: The broker's kind, by URL scheme.
KINDS = {"redis": "redis", "rediss": "redis", "amqp": "rabbitmq", "amqps": "rabbitmq"}
#: How to install each server.
INSTALL = {
    "redis-server": "apt-get install redis-server (Debian/Ubuntu), brew install redis "
    "(macOS), or use the Nix shell (nix develop)",
    "rabbitmq-server": "apt-get install rabbitmq-server (Debian/Ubuntu), brew install "
    "rabbitmq (macOS), or use the Nix shell (nix develop)",
}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
#: Where Erlang nodes register (``ERL_EPMD_PORT`` changes it).
EPMD_PORT = 4369


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
        raise SystemExit(not_installed(name))
    return found


def not_installed(program: str) -> str:
    """The one line that says a server is missing, and how to install it."""
    hint = INSTALL.get(program) or INSTALL.get(program.replace("rabbitmqctl", "rabbitmq-server"))
    return "%s is not installed (not on PATH). Install it: %s." % (program, hint)


def development_broker_url(broker: str, *, redis_port: int, rabbitmq_port: int) -> str:
    """The broker URL when ``CELERY_BROKER_URL`` is unset: ``BROKER``'s local server."""
    if broker == "redis":
        return "redis://localhost:%d/0" % redis_port
    if broker == "rabbitmq":
        return "amqp://guest:guest@localhost:%d//" % rabbitmq_port
    raise ValueError("BROKER=%s: it must be one of %s." % (broker, ", ".join(BROKERS)))


def broker_in_use(environ) -> str:
    """The project's broker URL: ``CELERY_BROKER_URL``, else :func:`development_broker_url`
    from ``BROKER``, ``REDIS_PORT`` and ``RABBITMQ_PORT`` (as the settings read them)."""
    if environ.get("CELERY_BROKER_URL"):
        return environ["CELERY_BROKER_URL"]
    ports = {}
    for name, default in (("REDIS_PORT", 6379), ("RABBITMQ_PORT", 5672)):
        value = environ.get(name) or str(default)
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise ValueError("%s=%s: it must be a port (1 to 65535)." % (name, value))
        ports[name] = int(value)
    return development_broker_url(
        environ.get("BROKER") or "redis",
        redis_port=ports["REDIS_PORT"],
        rabbitmq_port=ports["RABBITMQ_PORT"],
    )


def local_port(url: str) -> int | None:
    """The port of a broker URL whose server is this machine's; None for another host."""
    parts = urlsplit(url)
    if (parts.hostname or "localhost") not in LOCAL_HOSTS:
        return None
    return parts.port or DEFAULT_PORTS.get(parts.scheme)


def redis_command(
    port: int, data_dir: Path, *, persistent: bool = True, appendfsync: str = "everysec"
) -> list[str]:
    """Return the command line of a loopback Redis keeping its files in ``data_dir``
    (``appendfsync``: how often the append-only file reaches the disk)."""
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
    command += ["--appendonly", "yes" if persistent else "no", "--appendfsync", appendfsync]
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


def epmd_port(env: dict[str, str]) -> int:
    """The port of the Erlang port mapper (epmd) a node with ``env`` registers with."""
    return int(env.get("ERL_EPMD_PORT") or EPMD_PORT)


def stop_epmd(port: int) -> bool:
    """Ask the Erlang port mapper on ``port`` to exit, as ``epmd -kill`` does.

    A RabbitMQ node starts epmd when none runs, and epmd outlives it. epmd refuses
    while any Erlang node is registered with it, so this never disturbs another node.
    Returns True if it agreed.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"\x00\x01k")  # KILL_REQ
            return conn.recv(2) == b"OK"
    except OSError:
        return False


def server_down(port: int) -> bool:
    import redis

    try:
        return not redis.Redis(port=port, socket_timeout=1).ping()
    except (redis.ConnectionError, redis.BusyLoadingError):
        return True


def redis_clients(port: int) -> int:
    """Clients connected to the Redis on ``port``, besides the one asking."""
    import redis

    return redis.Redis(port=port, socket_timeout=1).info("clients")["connected_clients"] - 1


def rabbitmq_clients(env: dict[str, str]) -> int:
    """Client connections to the RabbitMQ node described by ``env``."""
    out = subprocess.run(
        [
            rabbitmq_tool("rabbitmqctl"),
            "-n",
            env["RABBITMQ_NODENAME"],
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    return len(out.split())


def restore_unacknowledged(port: int) -> None:
    """Hand back to their queues the messages that stopped workers left unacknowledged.

    Called when this runner has just started Redis: no worker can be connected yet, so
    every unacknowledged message belongs to a worker that is gone (killed by honcho's
    SIGKILL, say). Otherwise they would wait for the visibility timeout (an hour).
    """
    import redis
    from kombu import Connection

    from ..celery_overrides import REDIS_TRANSPORT

    for db in range(16):
        try:
            if not redis.Redis(port=port, db=db).exists("unacked"):
                continue
        except redis.ResponseError:  # no such database
            break
        url = "redis://127.0.0.1:%d/%d" % (port, db)
        with Connection(
            url,
            transport=REDIS_TRANSPORT,
            transport_options={"visibility_timeout": 0},
        ) as connection:
            qos = connection.default_channel.qos
            count = redis.Redis(port=port, db=db).hlen("unacked")
            qos.restore_visible(num=count)
        print(
            "redis: handed %d unacknowledged message(s) of stopped workers back to their "
            "queues (database %d)." % (count, db),
            flush=True,
        )


def run_until_stopped(
    command: list[str], env: dict[str, str], clients, *, wait: float, cwd: Path, started=None
) -> int:
    """Run the server in ``cwd`` (where a crashing server writes its dumps); on
    SIGTERM/SIGINT, stop it once ``clients()`` is 0 (or in time)."""
    # A session of its own: honcho's SIGTERM to our group must not reach the server.
    server = subprocess.Popen(
        command, env=env, cwd=cwd, start_new_session=True, preexec_fn=die_with_parent()
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *args: stop.set())
    signal.signal(signal.SIGINT, lambda *args: stop.set())
    if started is not None:
        started()
    while server.poll() is None and not stop.wait(0.2):
        pass
    if server.poll() is None:
        wait = float(os.environ.get("DEV_BROKER_STOP_WAIT_SECONDS") or wait)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                if clients() <= 0:
                    break
            except Exception:
                break
            time.sleep(0.1)
        server.terminate()
    return server.wait()


def wait_for_stop(name: str, port: int) -> None:
    """Say that another server is in use and sleep until SIGTERM or SIGINT."""

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"{name}: 127.0.0.1:{port} already answers; using that server.", flush=True)
    while True:
        signal.pause()


def idle(line: str) -> int:
    """Say ``line`` and sleep until SIGTERM or SIGINT (honcho stops the whole stack when
    any of its processes exits)."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *args: stopped.set())
    signal.signal(signal.SIGINT, lambda *args: stopped.set())
    print(line, flush=True)
    stopped.wait()
    return 0


def chosen_port(service: str, environ) -> tuple[int | None, str | None]:
    """``--if-used``: the port ``service`` serves on, or None and the line that says why it
    does not start."""
    try:
        url = broker_in_use(environ)
    except ValueError as exc:
        raise SystemExit("%s: %s" % (service, exc)) from None
    shown = mask_passwords(url)
    url = url.split(";")[0].strip()  # a failover list: its first node is this machine's?
    kind = KINDS.get(urlsplit(url).scheme)
    if kind != service:
        if (environ.get("DEV_BROKERS") or "").lower() == "all":
            variable = "REDIS_PORT" if service == "redis" else "RABBITMQ_PORT"
            return int(environ.get(variable) or (6379 if service == "redis" else 5672)), None
        return None, (
            "%s: not used (the broker is %s); DEV_BROKERS=all starts it too." % (service, shown)
        )
    port = local_port(url)
    if port is None:
        return None, "%s: the broker %s is another machine's: nothing to start here." % (
            service,
            shown,
        )
    default = "redis://localhost:6379/0" if service == "redis" else None
    if shown != default:
        print(
            "%s: the broker is %s. A shell of your own needs the same settings "
            "(BROKER, REDIS_PORT, RABBITMQ_PORT or CELERY_BROKER_URL): put them in .env, "
            "or export them." % (service, shown),
            flush=True,
        )
    else:
        print("%s: the broker is %s." % (service, shown), flush=True)
    return port, None


def url_answers(url: str) -> bool:
    """Return True if the server named by a URL accepts TCP connections."""
    parts = urlsplit(url)
    return port_answers(
        parts.port or DEFAULT_PORTS.get(parts.scheme, 0), parts.hostname or "127.0.0.1"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["answers"]:
        # answers URL: exit 0 if the server answers.
        raise SystemExit(0 if url_answers(argv[1]) else 1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=BROKERS)
    parser.add_argument("--port", type=int, help="the port (default, with --if-used: the URL's)")
    parser.add_argument(
        "--if-used",
        action="store_true",
        help="start only if the project's broker is this one, on this machine",
    )
    parser.add_argument("--dir", type=Path, required=True, help="where the server keeps its state")
    args = parser.parse_args(argv)

    if args.if_used and args.port is None:
        args.port, reason = chosen_port(args.service, os.environ)
        if reason is not None:
            return idle(reason)
    elif args.port is None:
        parser.error("--port is required without --if-used")
    if port_answers(args.port):
        wait_for_stop(args.service, args.port)
    data_dir = args.dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if args.service == "redis":
        if shutil.which("redis-server") is None:
            raise SystemExit("redis: " + not_installed("redis-server"))
        command = redis_command(args.port, data_dir)

        def started():
            deadline = time.monotonic() + 60
            while server_down(args.port):
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)
            restore_unacknowledged(args.port)

        return run_until_stopped(
            command,
            dict(os.environ),
            lambda: redis_clients(args.port),
            wait=4.5,
            cwd=data_dir,
            started=started,
        )
    node = os.environ.get("RABBITMQ_NODENAME", "conveyor@localhost")
    env = rabbitmq_environment(args.port, data_dir, node=node)
    env["RABBITMQ_LOGS"] = "-"  # to stdout, where honcho shows it
    try:
        command = [rabbitmq_tool("rabbitmq-server")]
    except SystemExit as exc:
        raise SystemExit("rabbitmq: %s" % exc) from None
    epmd_was_running = port_answers(epmd_port(env))
    status = run_until_stopped(command, env, lambda: rabbitmq_clients(env), wait=3, cwd=data_dir)
    if not epmd_was_running:
        # The node started the Erlang port mapper: stop it too, leaving nothing behind.
        stop_epmd(epmd_port(env))
    return status


if __name__ == "__main__":
    sys.exit(main())
