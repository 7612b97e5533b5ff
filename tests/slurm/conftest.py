"""Fixtures for tests against a real SLURM: the cluster, run directories, an executor harness.

The cluster is the single-node one of ``../shared/ci/setup-slurm.sh``: if ``sinfo`` does
not answer, the session fixture starts it (as root, as CI does) or skips with the reason.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
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
        proc = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and any(
        s.strip() in ("idle", "mixed", "allocated") for s in proc.stdout.split()
    )


@pytest.fixture(scope="session")
def slurm() -> None:
    """A running SLURM, started with the CI script if needed; skips with the reason."""
    if sinfo_answers():
        return
    if os.getuid() != 0:
        pytest.skip(
            "SLURM is not running and starting it needs root (run ../shared/ci/setup-slurm.sh)"
        )
    if not SETUP.is_file():
        pytest.skip(f"SLURM is not running and {SETUP} does not exist")
    env = {**os.environ, "SLURM_CPUS": os.environ.get("SLURM_CPUS", "8")}
    if shutil.which("slurmctld") and shutil.which("sbatch"):
        env["SLURM_SKIP_APT"] = "1"
    proc = subprocess.run(
        ["bash", str(SETUP)], capture_output=True, text=True, env=env, timeout=600
    )
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
            return all(
                len([o for o in self.of(lb) if o.state in TERMINAL]) >= count for lb in labels
            )

        await self.wait(ended, timeout)


def make_runs(
    base: Path, task: str, scripts: list[str], slurm_options: dict | None = None
) -> list[RunSpec]:
    """Hand-prepared run directories ``base/runs/<task>/<i>`` with the given run.sh bodies."""
    specs = []
    for i, body in enumerate(scripts, start=1):
        run_dir = base / "runs" / task / str(i)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.sh").write_text("#!/bin/sh\n" + body + "\n")
        specs.append(
            RunSpec(
                task,
                i,
                f"{task}.{i}",
                run_dir,
                {"AUTOPOT_TEST": "1"},
                {"slurm_options": dict(slurm_options or {})},
            )
        )
    return specs


def squeue_ids() -> set[str]:
    out = subprocess.run(
        ["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, check=True
    ).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


# ---------------------------------------------------------------------- TIMEOUT in background
# SLURM time limits are whole minutes, so a TIMEOUT takes about 61 s here. The scenario
# starts with the first SLURM test, in its own thread and event loop, and the test that
# checks it (test_timeout.py) joins it, so the other tests run meanwhile.
TIMEOUT_TEST = "test_timeout_is_failed_and_resubmitted_once"
FIRST_ATTEMPT_HANGS = (
    "n=$(cat attempts 2>/dev/null || echo 0); echo $((n + 1)) > attempts\n"
    'if [ "$n" = 0 ]; then exec sleep 600; fi\n'
    'echo "attempt $((n + 1)) done"'
)


class TimeoutScenario(threading.Thread):
    def __init__(self, base: Path):
        super().__init__(daemon=True, name="slurm timeout scenario")
        self.base = base
        self.harness: Harness | None = None
        self.spec: RunSpec | None = None
        self.ids: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self.scenario())
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test
            self.error = exc

    async def scenario(self) -> None:
        h = self.harness = Harness(retries=1, poll_interval=0.5, max_poll_interval=2.0)
        (spec,) = make_runs(self.base, "train", [FIRST_ATTEMPT_HANGS], {"time": "1"})
        self.spec = spec
        self.ids += await h.executor.submit([spec])
        await h.wait_final([spec.label], timeout=200)
        first = h.final(spec.label)
        if first is not None and first.retry:  # what the engine does within the task's budget
            spec.attempt += 1
            self.ids += await h.executor.submit([spec])
            await h.wait_final([spec.label], timeout=60, count=2)
        await h.executor.close()

    def stop(self) -> None:
        if self.is_alive() and self.ids:
            subprocess.run(["scancel", *self.ids], capture_output=True)


@pytest.fixture(scope="session", autouse=True)
def timeout_scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Started at the first test of this directory when the TIMEOUT test is selected."""
    wanted = any(item.name == TIMEOUT_TEST for item in request.session.items)
    if not wanted or not any("slurm" in item.keywords for item in request.session.items):
        yield None
        return
    try:
        request.getfixturevalue("slurm")
    except pytest.skip.Exception:
        yield None
        return
    scenario = TimeoutScenario(tmp_path_factory.mktemp("timeout"))
    scenario.start()
    yield scenario
    scenario.stop()
