"""A simulation task run through the real SLURM: recorded like a local one, cached after."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autopot.store.workflow_records import WorkflowRecords

pytestmark = pytest.mark.slurm


def simulate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autopot.cli", "simulate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_opt_on_slurm_is_recorded_and_cached(slurm: None, tmp_path: Path) -> None:
    from ase.build import bulk

    bulk("Cu", "fcc", a=3.7, cubic=True).write(tmp_path / "cu.xyz")
    args = [
        "opt",
        "-s",
        "cu.xyz",
        "--calculator",
        "emt",
        "-p",
        "filter=FrechetCell",
        "--format",
        "json",
        "-W",
        "wf",
        "--executor",
        "slurm",
        "--slurm-option",
        "time=5",
    ]
    first = simulate(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    result = json.loads(first.stdout.strip().splitlines()[-1])
    assert result["converged"] and abs(result["volume"] / 4 - 3.5908**3 / 4) < 0.05
    with WorkflowRecords.open(tmp_path / "wf", require_run=False) as records:
        (run,) = records.runs("opt", all_workflow_runs=True)
        assert run.state == "FINISHED" and run.executor == "slurm" and run.executor_id.isdigit()
    again = simulate(*args, cwd=tmp_path)
    assert again.returncode == 0 and "opt.1 (recorded)" in again.stderr
    with WorkflowRecords.open(tmp_path / "wf", require_run=False) as records:
        assert len(records.runs("opt", all_workflow_runs=True)) == 1  # nothing recomputed
