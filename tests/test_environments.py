"""The Procfile is the source of truth for the process commands: docker-compose.yml and
the Nix flake must not drift from it."""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from django.conf import settings

from tests.processes import procfile

ROOT = Path(__file__).resolve().parent.parent

#: Executables the Procfile starts, and the name under which the flake provides each
#: (any other executable must appear in flake.nix under its own name).
FLAKE_NAMES = {"python": "python3.withPackages"}
#: Brokers started by ``python -m apps.delivery.processes.brokers <service>``, and their
#: nixpkgs names.
DEV_SERVICE_PACKAGES = {"redis": "redis", "rabbitmq": "rabbitmq-server"}


# --- a reader for the YAML subset docker-compose.yml is written in ---------------
# (PyYAML is not a dependency of the project.)


def _strip_comment(line: str) -> str:
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _scalar(text: str):
    text = text.strip()
    if text.startswith(("[", '"')):
        return json.loads(text)  # flow sequences and double quotes are written as JSON
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    return text


def _merge(node, anchors: dict):
    """Resolve ``<<: *anchor`` merge keys (the mapping's own keys win)."""
    if isinstance(node, dict):
        base = _merge(anchors[node["<<"][1:]], anchors) if "<<" in node else {}
        own = {key: _merge(value, anchors) for key, value in node.items() if key != "<<"}
        return {**base, **own}
    if isinstance(node, list):
        return [_merge(value, anchors) for value in node]
    return node


def read_yaml(text: str) -> dict:
    """Read block mappings and sequences, one-line scalars, anchors on mappings and
    merge keys; refuse anything else rather than misread it."""
    root: dict = {}
    anchors: dict[str, dict] = {}
    # (indent of the line that opened the block, the block, its parent, its key)
    stack: list[tuple] = [(-1, root, None, None)]
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        item = line.strip()
        while indent <= stack[-1][0]:
            stack.pop()
        opened_at, block, parent, key = stack[-1]
        if item == "-" or item.startswith("- "):
            if not isinstance(block, list):
                if block or parent is None:
                    raise ValueError("line %d: unexpected list item" % number)
                block = parent[key] = []
                stack[-1] = (opened_at, block, parent, key)
            block.append(_scalar(item[2:]))
            continue
        match = re.fullmatch(r"([^\s:#][^:]*?):(?:\s+(.*))?", item)
        if match is None or not isinstance(block, dict) or item.endswith(("|", ">")):
            raise ValueError("line %d: not understood: %s" % (number, raw))
        name, value = _scalar(match.group(1)), match.group(2) or ""
        if value == "" or value.startswith("&"):
            block[name] = child = {}
            if value:
                anchors[value[1:]] = child
            stack.append((indent, child, block, name))
        else:
            block[name] = _scalar(value)
    return _merge(root, anchors)


def compose_services() -> dict[str, dict]:
    return read_yaml((ROOT / "docker-compose.yml").read_text())["services"]


def app_services() -> dict[str, dict]:
    """The services that run Conveyor's own image (built from the Dockerfile)."""
    return {name: service for name, service in compose_services().items() if "build" in service}


def compose_command(service: dict) -> str:
    command = service["command"]
    return shlex.join(command) if isinstance(command, list) else command


def healthcheck_command(service: dict) -> str:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return test
    return test[1] if test[0] == "CMD-SHELL" else shlex.join(test[1:])


def seconds(duration: str) -> float:
    """A Compose duration (``330s``, ``5m30s``) in seconds."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", duration)
    assert parts, "not a duration: %r" % duration
    return sum(float(number) * units[unit] for number, unit in parts)


def flake_code() -> str:
    """flake.nix without its comments."""
    text = (ROOT / "flake.nix").read_text()
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def modules_named(command: str) -> list[str]:
    """The Python modules a command runs: ``-m mod``, ``-A app`` and gunicorn's ``mod:app``."""
    words = shlex.split(command)
    modules = [after for flag, after in itertools.pairwise(words) if flag in ("-m", "-A", "--app")]
    if words[0] == "gunicorn":
        modules += [word for word in words[1:] if not word.startswith("-") and ":" in word][:1]
    return [module.split(":")[0] for module in modules]


# --- tests ------------------------------------------------------------------------


@pytest.mark.parametrize("process", ["worker", "beat"])
def test_compose_runs_the_procfile_command(process):
    """Compose's worker and beat run exactly the Procfile's commands."""
    assert compose_command(compose_services()[process]) == procfile()[process]


def test_every_command_names_modules_and_files_that_exist():
    """Every module and script named by the Procfile or by a command or health check of
    Conveyor's compose services exists."""
    commands = list(procfile().values())
    for service in app_services().values():
        commands.append(compose_command(service))
        if "healthcheck" in service:
            commands.append(healthcheck_command(service))

    missing = [
        "%s (in: %s)" % (module, command)
        for command in commands
        for module in modules_named(command)
        if importlib.util.find_spec(module) is None
    ]
    missing += [
        "%s (in: %s)" % (word, command)
        for command in commands
        for word in shlex.split(command)
        if word.endswith(".py") and not (ROOT / word).is_file()
    ]
    assert missing == []


def test_nix_shell_provides_every_executable_the_procfile_runs():
    """The flake's dev shell carries honcho and every program the Procfile starts,
    the brokers of apps.delivery.processes.brokers included."""
    needed = {"honcho"}
    for command in procfile().values():
        words = shlex.split(command)
        needed.add(FLAKE_NAMES.get(words[0], words[0]))
        if words[1:3] == ["-m", "apps.delivery.processes.brokers"]:
            needed.add(DEV_SERVICE_PACKAGES[words[3]])

    code = flake_code()
    absent = [
        name for name in needed if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(name), code)
    ]
    assert absent == []


def test_worker_stop_grace_period_outlasts_the_task_time_limit():
    """Compose waits longer for a worker's warm shutdown than a task may run."""
    worker = compose_services()["worker"]
    limit = settings.TASK_TIME_LIMIT_SECONDS
    configured = worker.get("environment", {}).get("TASK_TIME_LIMIT_SECONDS")
    if configured:  # "${TASK_TIME_LIMIT_SECONDS:-300}": its default
        limit = int(re.sub(r"^\$\{\w+:-(\d+)\}$", r"\1", configured))

    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert seconds(worker["stop_grace_period"]) > limit


def test_long_running_services_are_health_checked_and_wait_for_healthy_dependencies():
    """Every service but the one-shot migration has a health check; services start once
    what they depend on is healthy (or, for the migration, finished)."""
    services = compose_services()
    for name, service in services.items():
        if service.get("restart") != "no":
            assert "test" in service.get("healthcheck", {}), name
        for dependency, condition in service.get("depends_on", {}).items():
            expected = "service_healthy" if "healthcheck" in services[dependency] else None
            expected = expected or "service_completed_successfully"
            assert condition == {"condition": expected}, (name, dependency)
    images = {service["image"] for service in app_services().values()}
    assert len(images) == 1, images


def test_the_nix_shell_has_every_dependency_of_the_dev_extra():
    """The flake's Python environment (and shell) carry what ``pip install -e '.[dev]'``
    installs: the same set, by nixpkgs name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {
        re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()
        for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]
    }
    code = flake_code()
    absent = sorted(
        name for name in names if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(name), code)
    )
    assert absent == []


def test_the_worker_hands_tasks_back_before_compose_kills_it():
    """The supervisor's grace outlasts the task time limit, and it is done (its cold
    shutdown too) before Docker's SIGKILL."""
    from apps.delivery.processes.supervise import COLD_VARIABLE, DEFAULT_COLD_SECONDS

    worker = compose_services()["worker"]
    grace = float(worker["environment"]["WORKER_STOP_GRACE_SECONDS"])
    cold = float(worker["environment"].get(COLD_VARIABLE, DEFAULT_COLD_SECONDS))
    assert grace > settings.TASK_TIME_LIMIT_SECONDS
    assert grace + cold < seconds(worker["stop_grace_period"])


def test_make_dev_and_the_nix_shell_run_honcho_unbuffered():
    """Both give honcho what the honcho tests give it (test_procfile.HONCHO_ENVIRONMENT)."""
    from tests.test_procfile import HONCHO_ENVIRONMENT

    recipe = re.search(r"^dev:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe, "no dev target in the Makefile"
    code = flake_code()
    for name, value in HONCHO_ENVIRONMENT.items():
        assert "%s=%s honcho start" % (name, value) in recipe.group(1)
        assert "export %s=%s" % (name, value) in code
