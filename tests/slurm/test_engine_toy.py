"""The engine's toy workflow with every task a SLURM job, through the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autopot.store.database import open_store

from .conftest import squeue_ids

pytestmark = pytest.mark.slurm

TOY = Path(__file__).resolve().parents[1] / "engine" / "toy"
SLURM_EXECUTOR = "executor: {name: slurm, poll_interval: 0.3, max_poll_interval: 2.0}"


@pytest.fixture
def slurm_toy(slurm: None, tmp_path: Path) -> Path:
    dest = tmp_path / "toy"
    shutil.copytree(TOY, dest, ignore=shutil.ignore_patterns("autopot-workflow", "__pycache__"))
    motoko = dest / "motoko.yaml"
    text = motoko.read_text()
    assert "executor: {name: local}" in text
    motoko.write_text(text.replace("executor: {name: local}", SLURM_EXECUTOR))
    return motoko


def autopot(
    *args: str, timeout: float = 300, check: bool = False
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "autopot.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"autopot {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def status(motoko: Path) -> dict:
    return json.loads(
        autopot("orchestrator", "status", "-c", str(motoko), "--json", check=True).stdout
    )


def runs_of(motoko: Path, task: str) -> list[dict]:
    with open_store(motoko.parent / "autopot-workflow", read_only=True) as store:
        return [
            {
                **r.summary(),
                "executor": r.executor,
                "attempts": r.attempts,
                "quantities": dict(r.quantities),
                "history": [h[1] for h in r.history],
                "manifest": dict(r.manifest),
            }
            for r in store.root.task_types[task].runs.values()
        ]


def test_toy_workflow_every_task_a_slurm_job(slurm_toy: Path) -> None:
    n = 30
    proc = autopot("orchestrator", "start", "-c", str(slurm_toy), "--n", str(n), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    works = runs_of(slurm_toy, "work")
    assert len(works) == n and {r["state"] for r in works} == {"FINISHED"}
    assert {r["executor"] for r in works} == {"slurm"}
    # one job array for the fan-out: ids 123_0 ... 123_29
    bases = {r["executor_id"].split("_")[0] for r in works}
    assert len(bases) == 1 and all(re.fullmatch(r"\d+_\d+", r["executor_id"]) for r in works)
    wf = slurm_toy.parent / "autopot-workflow"
    for r in works:
        assert r["exit_code"] == 0 and r["attempts"] == 1
        assert (wf / r["directory"] / "started.log").read_text().count("\n") == 1  # ran once
        assert "result.txt" in r["manifest"] and "stdout.log" in r["manifest"]
    # collect reached the database from its SLURM job (the socket named in its run directory)
    (collect,) = runs_of(slurm_toy, "collect")
    assert collect["state"] == "FINISHED" and collect["executor"] == "slurm"
    assert re.fullmatch(r"\d+", collect["executor_id"])
    assert collect["quantities"] == {"total": sum(i * i for i in range(n)), "n": n}
    assert status(slurm_toy)["state"] == "FINISHED"


def test_orchestrator_stop_cancels_slurm_jobs(slurm_toy: Path) -> None:
    proc = autopot(
        "orchestrator",
        "start",
        "-c",
        str(slurm_toy),
        "--detach",
        "--n",
        "2",
        "--sleep",
        "120",
        check=True,
    )
    assert "background" in proc.stdout
    deadline = time.time() + 90
    while (
        status(slurm_toy)["counts"].get("work", {}).get("RUNNING", 0) < 2 and time.time() < deadline
    ):
        time.sleep(0.2)
    works = runs_of(slurm_toy, "work")
    ids = {r["executor_id"] for r in works}
    assert ids <= squeue_ids()
    stop = autopot("orchestrator", "stop", "-c", str(slurm_toy), "--timeout", "60")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    works = runs_of(slurm_toy, "work")
    assert {r["state"] for r in works} == {"CANCELLED"}
    assert all("cancelled by autopot" in r["cause"] for r in works), [r["cause"] for r in works]
    assert not ids & squeue_ids()


def test_kill9_orchestrator_then_resume_adopts_slurm_jobs(slurm_toy: Path) -> None:
    n = 8
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autopot.cli",
            "orchestrator",
            "start",
            "-c",
            str(slurm_toy),
            "--n",
            str(n),
            "--sleep",
            "4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        counts = (
            status(slurm_toy)["counts"].get("work", {})
            if (slurm_toy.parent / "autopot-workflow" / "db").exists()
            else {}
        )
        if counts.get("RUNNING", 0) >= 2:
            break
        time.sleep(0.2)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    second = autopot(
        "orchestrator", "start", "-c", str(slurm_toy), "--n", str(n), "--sleep", "4", timeout=300
    )
    assert second.returncode == 0, second.stdout + second.stderr
    works = runs_of(slurm_toy, "work")
    wf = slurm_toy.parent / "autopot-workflow"
    assert len(works) == n and {r["state"] for r in works} == {"FINISHED"}
    for r in works:  # adopted, not resubmitted: each ran exactly once, in one job
        assert (wf / r["directory"] / "started.log").read_text().count("\n") == 1, r
        assert r["attempts"] == 1, r
    (collect,) = runs_of(slurm_toy, "collect")
    assert collect["quantities"]["total"] == sum(i * i for i in range(n))
