"""Sites cap the jobs a user may have queued: ``max_queued`` keeps a workflow under it."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from .conftest import Harness, make_runs

pytestmark = pytest.mark.slurm


def _queued(job_ids: set[str]) -> int:
    """How many of our jobs (array tasks count one each) SLURM lists as not yet ended."""
    out = subprocess.run(
        ["squeue", "-h", "-r", "-t", "PD,CF,R,CG", "-o", "%i"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return len([i for i in out if i in job_ids or i.split("_")[0] in job_ids])


def test_a_queue_cap_of_5_with_50_tasks(slurm: None, tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int]:
        h = Harness(max_queued=5, poll_interval=0.2, max_poll_interval=0.5)
        specs = make_runs(tmp_path, "sp_calc", ["sleep 0.2"] * 50)
        ids = await h.executor.submit(specs)
        assert sum(1 for i in ids if i) == 5 and ids.count("") == 45
        seen_max, ours = 0, set()
        labels = [s.label for s in specs]
        while not all(h.final(label) for label in labels):
            ours |= {j.job_id.split("_")[0] for j in h.executor._jobs.values()}
            seen_max = max(seen_max, _queued(ours), len(h.executor._jobs))
            await asyncio.sleep(0.2)
        await h.executor.close()
        finished = sum(1 for label in labels if h.final(label).state == "FINISHED")  # type: ignore[union-attr]
        return seen_max, finished

    seen_max, finished = asyncio.run(scenario())
    assert finished == 50
    assert 1 <= seen_max <= 5


def test_50_short_tasks_with_group_size_10_use_5_jobs(slurm: None, tmp_path: Path) -> None:
    async def scenario() -> tuple[set[str], list[str], dict[str, int]]:
        h = Harness(group_size=10, poll_interval=0.2, max_poll_interval=0.5)
        bodies = ["echo ok"] * 50
        bodies[13] = "echo bad >&2; exit 3"  # one run of a group fails: only it
        specs = make_runs(tmp_path, "select", bodies)
        ids = await h.executor.submit(specs)
        labels = [s.label for s in specs]
        await h.wait_final(labels, timeout=120)
        await h.executor.close()
        states = [h.final(label).state for label in labels]  # type: ignore[union-attr]
        codes = {label: h.final(label).exit_code for label in labels}  # type: ignore[union-attr]
        return set(ids), states, codes

    ids, states, codes = asyncio.run(scenario())
    assert len(ids) == 5 and len({i.split("_")[0] for i in ids}) == 1  # one sbatch, 5 tasks
    assert states.count("FINISHED") == 49 and states[13] == "FAILED"
    assert codes["select.14"] == 3
    for i in range(1, 51):  # every run ran once, in its own directory
        assert (tmp_path / "runs" / "select" / str(i) / ".autopot_exit").exists()
