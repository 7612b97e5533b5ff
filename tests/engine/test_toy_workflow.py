"""End-to-end behaviour of the engine through the CLI, on the local executor."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from autopot.store.database import open_store

from .conftest import autopot, start_background, status


def wf_dir(motoko: Path) -> Path:
    return motoko.parent / "autopot-workflow"


def runs_of(motoko: Path, task: str) -> list[dict]:
    with open_store(wf_dir(motoko), read_only=True) as store:
        task_type = store.root.task_types[task]
        return [
            {
                **r.summary(),
                "attempts": r.attempts,
                "history": [h[1] for h in r.history],
                "quantities": dict(r.quantities),
                "manifest": dict(r.manifest),
            }
            for r in task_type.runs.values()
        ]


def executions(motoko: Path, run: dict) -> int:
    log = wf_dir(motoko) / run["directory"] / "started.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_toy_200_end_to_end(toy: Path) -> None:
    proc = autopot("orchestrator", "start", "-c", str(toy), "--n", "200", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    works = runs_of(toy, "work")
    assert len(works) == 200
    assert {r["state"] for r in works} == {"FINISHED"}
    assert all(r["exit_code"] == 0 and r["attempts"] == 1 for r in works)
    assert all(executions(toy, r) == 1 for r in works)
    assert all("result.txt" in r["manifest"] and "stdout.log" in r["manifest"] for r in works)
    (collect,) = runs_of(toy, "collect")
    assert collect["state"] == "FINISHED"
    assert collect["quantities"] == {"total": sum(i * i for i in range(200)), "n": 200}
    snap = status(toy)
    assert snap["state"] == "FINISHED" and snap["counts"]["work"] == {"FINISHED": 200}


def test_rerun_repeats_no_work(toy: Path) -> None:
    autopot("orchestrator", "start", "-c", str(toy), "--n", "5", check=True)
    proc = autopot("orchestrator", "start", "-c", str(toy), "--n", "5")
    assert proc.returncode == 0, proc.stderr
    assert "resumed" in proc.stderr
    works = runs_of(toy, "work")
    assert len(works) == 5 and all(executions(toy, r) == 1 for r in works)


def test_failing_task_fails_workflow_with_cause(toy: Path) -> None:
    proc = autopot("orchestrator", "start", "-c", str(toy), "--n", "3", "--fail", "1")
    assert proc.returncode == 1
    assert (
        "FAILED" in proc.stderr
        and "exit code 3" in proc.stderr
        and "failing on purpose" in proc.stderr
    )
    failed = [r for r in runs_of(toy, "work") if r["state"] == "FAILED"]
    assert len(failed) == 1
    assert failed[0]["exit_code"] == 3
    assert "work 1: failing on purpose" in failed[0]["cause"]
    assert status(toy)["state"] == "FAILED"
    assert not (wf_dir(toy) / "runs" / "collect").exists()  # nothing after the failure


def test_kill9_orchestrator_then_resume(toy: Path) -> None:
    n = 24
    first = start_background(toy, "--n", str(n), "--sleep", "0.4")
    deadline = time.time() + 120
    while time.time() < deadline:
        counts = status(toy)["counts"].get("work", {}) if (wf_dir(toy) / "db").exists() else {}
        if counts.get("FINISHED", 0) >= 4:
            break
        time.sleep(0.1)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    second = autopot(
        "orchestrator", "start", "-c", str(toy), "--n", str(n), "--sleep", "0.4", timeout=300
    )
    assert second.returncode == 0, second.stdout + second.stderr
    works = runs_of(toy, "work")
    assert len(works) == n
    assert {r["state"] for r in works} == {"FINISHED"}
    assert all(executions(toy, r) == 1 for r in works), [executions(toy, r) for r in works]
    assert all(r["history"].count("RUNNING") <= 1 for r in works)
    (collect,) = runs_of(toy, "collect")
    assert collect["quantities"]["total"] == sum(i * i for i in range(n))


def test_second_orchestrator_refuses(toy: Path) -> None:
    first = start_background(toy, "--n", "2", "--sleep", "3")
    try:
        deadline = time.time() + 30
        while not (wf_dir(toy) / "orchestrator.lock").exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        second = autopot("orchestrator", "start", "-c", str(toy), "--n", "2")
        assert second.returncode == 2
        assert "already running" in second.stderr and second.stderr.count("\n") == 1
    finally:
        assert first.wait(timeout=60) == 0
    assert all(executions(toy, r) == 1 for r in runs_of(toy, "work"))


def test_stop_cancels_running_tasks(toy: Path) -> None:
    proc = autopot(
        "orchestrator", "start", "-c", str(toy), "--detach", "--n", "2", "--sleep", "60", check=True
    )
    assert "background" in proc.stdout
    deadline = time.time() + 60
    while status(toy)["counts"].get("work", {}).get("RUNNING", 0) < 2 and time.time() < deadline:
        time.sleep(0.1)
    stop = autopot("orchestrator", "stop", "-c", str(toy), "--timeout", "60")
    assert stop.returncode == 0, stop.stderr
    works = runs_of(toy, "work")
    assert {r["state"] for r in works} == {"CANCELLED"}
    assert status(toy)["state"] == "STOPPED"
    log = (wf_dir(toy) / "logs" / "orchestrator-default.log").read_text()
    assert "stopped" in log


def test_killed_task_is_failed_with_cause(toy: Path) -> None:
    first = start_background(toy, "--n", "1", "--sleep", "60")
    deadline = time.time() + 60
    pid_file = wf_dir(toy) / "runs" / "work" / "1" / ".autopot_pid"
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 1, out
    (run,) = runs_of(toy, "work")
    assert run["state"] == "FAILED" and "SIGKILL" in run["cause"]
