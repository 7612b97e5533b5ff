"""The database server dies during a run (real orchestrator, real ZEO server, real tasks).

* restarted after 5 s: the workflow completes, no result is lost or computed twice;
* not restarted: the orchestrator says so within 5 s, exits 5 within the reconnect
  timeout (``AUTOPOT_DB_RECONNECT_TIMEOUT``, short here), leaves no stale server files,
  and the next start completes with the same results as an undisturbed run, re-running
  nothing whose result was on disk.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from autopot.errors import ExitCode
from autopot.store.database import WorkflowPaths, open_store
from autopot.store.server import server_pid, start_server, stop_server

from .conftest import autopot, start_background

OUTAGE = Path(__file__).parent / "outage"
N = 6
EXPECTED = [i * i for i in range(N)]


@pytest.fixture
def outage(tmp_path: Path) -> Path:
    dest = tmp_path / "outage"
    shutil.copytree(OUTAGE, dest, ignore=shutil.ignore_patterns("autopot-workflow", "__pycache__"))
    return dest / "motoko.yaml"


def _wf(motoko: Path) -> Path:
    return motoko.parent / "autopot-workflow"


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _executions(wf: Path) -> dict[int, int]:
    out = {}
    for log in (wf / "runs" / "work").glob("*/started.log"):
        out[int(log.parent.name)] = len(log.read_text().splitlines())
    return out


def _kill_server_while_tasks_run(wf: Path) -> int:
    """SIGKILL the ZEO server once two work tasks are computing; returns its pid."""
    _wait_for(
        lambda: len(list((wf / "runs" / "work").glob("*/started.log"))) >= 2,
        60,
        "two work tasks running",
    )
    pid = server_pid(wf)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    return pid


def _results(wf: Path) -> tuple[dict[int, tuple[str, int]], list[int]]:
    with open_store(wf, read_only=True) as store:
        works = {
            r.id: (r.state, int(r.quantities.get("value", -1)))
            for r in store.root.task_types["work"].runs.values()
        }
        (collect,) = store.root.task_types["collect"].runs.values()
        assert collect.state == "FINISHED", collect.cause
        return works, list(collect.quantities["values"])


def test_server_killed_and_restarted_after_5_s_loses_nothing(outage: Path) -> None:
    wf = _wf(outage)
    proc = start_background(outage, "--n", str(N), "--sleep", "4")
    try:
        _kill_server_while_tasks_run(wf)
        time.sleep(5)
        start_server(wf)  # what `autopot db serve` or a supervisor does
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out
    assert "database server unreachable" in out and "database server back" in out, out
    works, values = _results(wf)
    assert values == EXPECTED  # no configuration lost
    assert all(state == "FINISHED" for state, _ in works.values()), works
    assert set(_executions(wf).values()) == {1}  # nothing computed twice
    pid = server_pid(wf)
    if pid is not None:  # the orchestrator stops the server it owns; be tidy if not
        stop_server(pid)


def test_server_killed_for_good_exits_5_then_restart_completes(outage: Path) -> None:
    wf = _wf(outage)
    timeout = 8.0
    env_timeout = {"AUTOPOT_DB_RECONNECT_TIMEOUT": str(timeout)}
    os.environ.update(env_timeout)  # inherited by start_background's orchestrator
    try:
        proc = start_background(outage, "--n", str(N), "--sleep", "4")
        try:
            _kill_server_while_tasks_run(wf)
            killed = time.time()
            out, _ = proc.communicate(timeout=120)
            took = time.time() - killed
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    finally:
        for key in env_timeout:
            os.environ.pop(key, None)
    assert proc.returncode == ExitCode.INFRASTRUCTURE == 5, out
    assert took < timeout + 20, took  # the documented timeout, plus shutdown
    lines = out.splitlines()
    assert any("database server unreachable" in ln for ln in lines), out
    assert "Traceback" not in out, out
    assert "(exit 5)" in lines[-1], out
    paths = WorkflowPaths(wf)
    assert not paths.server_pid.exists() and not paths.socket.exists()
    with open_store(wf, read_only=True) as store:  # nothing with a result on disk is FAILED
        assert not [
            r.label for r in store.root.task_types["work"].runs.values() if r.state == "FAILED"
        ]
    # tasks computing during the outage finish offline; their outcome files wait
    _wait_for(
        lambda: (
            not any(
                (d / ".autopot_pid").exists() and not (d / ".autopot_exit").exists()
                for d in (wf / "runs" / "work").iterdir()
            )
        ),
        60,
        "orphaned tasks to end",
    )
    before = _executions(wf)
    proc2 = autopot("orchestrator", "start", "-c", str(outage), "--n", str(N), "--sleep", "4")
    assert proc2.returncode == 0, proc2.stdout + proc2.stderr
    works, values = _results(wf)
    assert values == EXPECTED  # the same set as an undisturbed run
    after = _executions(wf)
    assert all(after[i] == 1 for i in before), (before, after)  # none re-run


def test_a_task_killed_by_a_signal_is_retried_and_the_cause_names_it(outage: Path) -> None:
    """The OOM killer's SIGKILL is not the task's verdict: retried within ``retries``."""
    text = outage.read_text().replace(
        "work: tasks/work", "work: {template: tasks/work, retries: 1}"
    )
    outage.write_text(text)
    proc = autopot("orchestrator", "start", "-c", str(outage), "--n", "3", "--kill-once", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open_store(_wf(outage), read_only=True) as store:
        killed = [
            r for r in store.root.task_types["work"].runs.values() if r.job.params["kill_once"]
        ]
        (run,) = killed
        assert run.state == "FINISHED" and run.attempts == 2
        causes = [cause for _, state, cause in run.history if state == "FAILED"]
        assert causes and "killed by signal SIGKILL" in causes[0], run.history
        assert "137" not in causes[0]
    _, values = _results(_wf(outage))
    assert values == [0, 1, 4]


def test_database_disk_full_mid_run_exit_5_naming_the_file_then_restart(
    outage: Path, tmp_path: Path
) -> None:
    """The database's disk fills while tasks compute: one line naming the database file,
    exit 5; with space freed, the next start completes with every result, none re-run."""
    from .test_exit_codes import _tmpfs

    wf = _wf(outage)
    db_dir = WorkflowPaths(wf).db_dir
    if not _tmpfs(db_dir, "32m"):
        pytest.skip("needs root and tmpfs mounts to fill a disk")
    try:
        proc = start_background(outage, "--n", str(N), "--sleep", "4")
        try:
            _wait_for(
                lambda: len(list((wf / "runs" / "work").glob("*/started.log"))) >= 2,
                60,
                "two work tasks running",
            )
            filler = db_dir / "filler"
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            for chunk in (65536, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * chunk)
                except OSError:
                    pass
            os.close(fd)
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode == ExitCode.INFRASTRUCTURE, out
        last = out.strip().splitlines()[-1]
        assert "No space left on device" in last and str(db_dir / "autopot.fs") in last, out
        _wait_for(
            lambda: (
                not any(
                    (d / ".autopot_pid").exists() and not (d / ".autopot_exit").exists()
                    for d in (wf / "runs" / "work").iterdir()
                )
            ),
            60,
            "orphaned tasks to end",
        )
        filler.unlink()
        before = _executions(wf)
        proc2 = autopot("orchestrator", "start", "-c", str(outage), "--n", str(N), "--sleep", "4")
        assert proc2.returncode == 0, proc2.stdout + proc2.stderr
        _, values = _results(wf)
        assert values == EXPECTED
        after = _executions(wf)
        assert all(after[i] == 1 for i in before), (before, after)
    finally:
        pid = server_pid(wf)
        if pid is not None:
            stop_server(pid)
        for _ in range(50):
            if subprocess.run(["umount", str(db_dir)], capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
