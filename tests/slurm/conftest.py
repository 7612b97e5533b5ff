"""Fixtures for tests against a real SLURM: the cluster, run directories, an executor harness.

The cluster is the single-node one of ``../shared/ci/setup-slurm.sh``: if ``sinfo`` does
not answer, the session fixture starts it (as root, as CI does) or skips with the reason.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autopot.executors.base import Outcome, RunSpec
from autopot.executors.slurm import SlurmExecutor

SETUP = Path(__file__).resolve().parents[3] / "shared" / "ci" / "setup-slurm.sh"
TERMINAL = {"FINISHED", "FAILED", "CANCELLED"}


def sinfo_answers() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and any(s.strip() in ("idle", "mixed", "allocated") for s in proc.stdout.split())


@pytest.fixture(scope="session")
def slurm() -> None:
    """A running SLURM, started with the CI script if needed; skips with the reason."""
    if sinfo_answers():
        return
    if os.getuid() != 0:
        pytest.skip("SLURM is not running and starting it needs root (run ../shared/ci/setup-slurm.sh)")
    if not SETUP.is_file():
        pytest.skip(f"SLURM is not running and {SETUP} does not exist")
    env = {**os.environ, "SLURM_CPUS": os.environ.get("SLURM_CPUS", "8")}
    if shutil.which("slurmctld") and shutil.which("sbatch"):
        env["SLURM_SKIP_APT"] = "1"
    proc = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0 or not sinfo_answers():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        pytest.skip(f"SLURM setup failed ({proc.returncode}): {' | '.join(tail)}")


class Harness:
    """An executor plus the outcomes it reported, in one event loop per test."""

    def __init__(self, **options: Any):
        options.setdefault("poll_interval", 0.25)
        options.setdefault("max_poll_interval", 1.0)
        self.outcomes: list[Outcome] = []
        self.changed = asyncio.Event()
        self.executor = SlurmExecutor(self.report, **options)

    def report(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.changed.set()

    def of(self, label: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.label == label]

    def final(self, label: str) -> Outcome | None:
        ends = [o for o in self.of(label) if o.state in TERMINAL]
        return ends[-1] if ends else None

    async def wait(self, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; outcomes so far: {self.outcomes[-5:]}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
            except TimeoutError:
                pass

    async def wait_final(self, labels: list[str], timeout: float = 60.0, count: int = 1) -> None:
        def ended() -> bool:
            return all(len([o for o in self.of(lb) if o.state in TERMINAL]) >= count for lb in labels)

        await self.wait(ended, timeout)


def make_runs(base: Path, task: str, scripts: list[str], slurm_options: dict | None = None) -> list[RunSpec]:
    """Hand-prepared run directories ``base/runs/<task>/<i>`` with the given run.sh bodies."""
    specs = []
    for i, body in enumerate(scripts, start=1):
        run_dir = base / "runs" / task / str(i)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.sh").write_text("#!/bin/sh\n" + body + "\n")
        specs.append(RunSpec(task, i, f"{task}.{i}", run_dir, {"AUTOPOT_TEST": "1"},
                             {"slurm_options": dict(slurm_options or {})}))
    return specs


def squeue_ids() -> set[str]:
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, check=True).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}
