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
