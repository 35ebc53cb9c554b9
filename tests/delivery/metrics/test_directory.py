"""Each process group counts in a metrics directory of its own, made before
prometheus_client is imported, empty at start and gone once its process has exited."""

import os
import runpy
import subprocess
import sys
from types import SimpleNamespace

from apps.delivery.metrics import directory
from tests.processes import BASE_DIR

OUT = {"capture_output": True, "text": True, "check": True, "timeout": 30}


def run_python(code: str, run_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "RUN_DIR": str(run_dir)}
    env.pop(directory.VARIABLE, None)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_this_process_counts_in_a_directory_of_its_own_group():
    path = directory.current()
    assert path is not None
    assert path.is_dir()
    assert path.parent == directory.metrics_root()
    assert path.name.endswith("-%d" % os.getpid())


def test_a_process_that_loads_the_project_counts_in_files_and_removes_them_at_exit(tmp_path):
    # given: a process that loads the project and counts something
    code = (
        "import os; import config.celery; "
        "from apps.delivery.metrics import instruments; "
        "from prometheus_client import values; "
        "instruments.count_publication('t'); "
        "path = os.environ['PROMETHEUS_MULTIPROC_DIR']; "
        "print(path, values.ValueClass.__name__, sorted(os.listdir(path)))"
    )
    # when
    ran = run_python(code, tmp_path)
    # then: multiprocess mode, in RUN_DIR/metrics/<role>-<pid>, which is gone afterwards
    assert ran.returncode == 0, ran.stderr
    path, value_class, files = ran.stdout.split(" ", 2)
    assert os.path.dirname(path) == str(tmp_path / "metrics")
    assert value_class == "MmapedValue"
    assert "counter" in files
    assert not os.path.exists(path)
    assert not (tmp_path / "metrics").exists()  # the last one out


def test_where_run_dir_cannot_have_it_the_directory_is_a_temporary_one(tmp_path):
    # given: a RUN_DIR where the metrics folder cannot be made
    (tmp_path / "metrics").write_text("not a folder")
    # when
    ran = run_python(
        "import os, config.celery; print(os.environ['PROMETHEUS_MULTIPROC_DIR'])", tmp_path
    )
    # then: the process runs, with a directory of its own elsewhere, gone afterwards
    assert ran.returncode == 0, ran.stderr
    path = ran.stdout.strip()
    assert os.path.basename(path).startswith("conveyor-metrics-web-")
    assert not os.path.exists(path)


def test_preparing_after_prometheus_client_was_imported_is_refused(tmp_path):
    code = (
        "import prometheus_client; from apps.delivery.metrics import directory; "
        "directory.prepare('web')"
    )
    ran = run_python(code, tmp_path)
    assert ran.returncode == 1
    assert "RuntimeError: prometheus_client was imported before" in ran.stderr


def test_directories_of_processes_that_no_longer_run_are_removed(tmp_path):
    # given: the directory of this process, and one of a process that has exited
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **OUT)
    alive = tmp_path / ("worker-%d" % os.getpid())
    gone = tmp_path / ("worker-%s" % finished.stdout.strip())
    for path in (alive, gone):
        path.mkdir()
        (path / "counter_1.db").write_bytes(b"")
    # when
    removed = directory.remove_stale(tmp_path)
    # then
    assert removed == [gone]
    assert alive.is_dir()
    assert not gone.exists()


def test_a_gunicorn_worker_that_exits_leaves_the_live_gauges(tmp_path):
    # given: the live gauges of a gunicorn worker, in this process group's directory
    hooks = runpy.run_path(str(BASE_DIR / "config" / "gunicorn.py"))
    live = directory.current() / "gauge_livesum_999999.db"
    counted = directory.current() / "counter_999999.db"
    live.write_bytes(b"")
    counted.write_bytes(b"")
    # when: gunicorn's master sees it exit
    hooks["child_exit"](None, SimpleNamespace(pid=999999))
    # then: what it counted stays, what it had running does not
    assert not live.exists()
    assert counted.exists()
    counted.unlink()
