"""Where each process group keeps its metrics: prometheus_client's multiprocess mode.

Celery's prefork pool and gunicorn's workers are processes of their own, so a metric
counted in one of them is out of reach of the process that serves the scrape.
prometheus_client's multiprocess mode keeps every process's values in files in the
directory named by ``PROMETHEUS_MULTIPROC_DIR``, and a scrape adds them up
(https://prometheus.github.io/client_python/multiprocess/).

Each process that loads the project gets a directory for its group,
``RUN_DIR/metrics/<role>-<pid>`` (``web``, ``worker`` or ``beat``, and its own pid):
``config/celery.py`` calls :func:`prepare` first thing, and every process imports it
first. The processes it forks (Celery's pool processes, gunicorn's workers) inherit the
directory and write their own files there; a process started anew (runserver's
reloaded server, a ``manage.py`` command) makes its own. A directory starts empty, is
removed when its process exits, and one left by a killed process is removed by the next
process that prepares one (its pid no longer runs). Where ``RUN_DIR`` cannot have it,
the directory is a temporary one. ``PROMETHEUS_MULTIPROC_DIR`` is Conveyor's to set: a
value in the environment is replaced.

prometheus_client chooses its multiprocess mode from that variable when it is first
imported, so this module imports nothing from it (nor from Django) until a process has
its directory.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..processes.health import run_directory

#: The variable that names the directory, read by prometheus_client.
VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: The process that prepared a directory, and the directory.
_prepared: dict[str, object] = {"pid": None, "path": None}


def metrics_root(run_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds each process group's metrics directory."""
    return run_directory(run_dir) / "metrics"


def prepare(role: str, *, run_dir: str | os.PathLike | None = None) -> Path:
    """Give this process's group an empty metrics directory, name it in
    ``PROMETHEUS_MULTIPROC_DIR``, and return it (the same one if called again).

    Raises ``RuntimeError`` if prometheus_client was imported before: its metrics would
    stay in this process's memory, out of every scrape.
    """
    pid = os.getpid()
    if _prepared["pid"] == pid:
        return _prepared["path"]
    if "prometheus_client.values" in sys.modules:
        raise RuntimeError(
            "prometheus_client was imported before the metrics directory was prepared: "
            "import config.celery (or call apps.delivery.metrics.directory.prepare) first."
        )
    root = metrics_root(run_dir)
    path = root / ("%s-%d" % (role, pid))
    try:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    except OSError:
        # RUN_DIR cannot have it (read-only, or made by another user, such as root at an
        # image's build): a directory of this process's own elsewhere.
        root, path = None, Path(tempfile.mkdtemp(prefix="conveyor-metrics-%s-" % role))
    else:
        with contextlib.suppress(OSError):
            remove_stale(root)
    os.environ[VARIABLE] = str(path)
    _prepared.update(pid=pid, path=path)
    atexit.register(_remove, path, root, pid)
    return path


def remove_stale(root: Path) -> list[Path]:
    """Remove the directories under ``root`` whose process no longer runs; return them."""
    removed = []
    for entry in root.iterdir():
        _, _, pid = entry.name.rpartition("-")
        if entry.is_dir() and pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def current() -> Path | None:
    """This process group's metrics directory, if it has one."""
    path = os.environ.get(VARIABLE)
    return Path(path) if path else None


def mark_process_dead(pid: int) -> None:
    """A process of this group exited (a pool process, a gunicorn worker): its live
    gauges (``conveyor_tasks_running``) stop counting. Its counters and histograms stay:
    what it did is still part of the totals."""
    if current() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(current()))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path, root: Path | None, pid: int) -> None:
    # Forked processes inherit the exit handler: only the process that made it removes it.
    if os.getpid() != pid:
        return
    with contextlib.suppress(OSError):
        shutil.rmtree(path)
    if root is not None:
        # The last one out removes the folder too, so that no command run by another user
        # (root, building an image) leaves one the others cannot write in.
        with contextlib.suppress(OSError):
            root.rmdir()
