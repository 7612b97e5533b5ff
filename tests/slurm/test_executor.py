"""The SLURM executor against a real single-node SLURM, with hand-prepared run directories."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from autopot.executors.slurm_script import INTENT_FILE

from .conftest import Harness, make_runs, squeue_ids

pytestmark = pytest.mark.slurm


def test_array_of_50_is_one_sbatch(slurm: None, tmp_path: Path) -> None:
    specs = make_runs(
        tmp_path, "work", [f'echo "run {i} $AUTOPOT_TEST"' for i in range(50)], {"time": "5"}
    )

    async def scenario() -> Harness:
        h = Harness()
        ids = await h.executor.submit(specs)
        base = ids[0].split("_")[0]
        assert ids == [f"{base}_{i}" for i in range(50)]
        await h.wait_final([s.label for s in specs], timeout=120)
        await h.executor.close()
        return h

    h = asyncio.run(scenario())
    assert h.executor.stats.sbatch == 1
    assert all(
        h.final(s.label).state == "FINISHED" and h.final(s.label).exit_code == 0 for s in specs
    )
    for i, spec in enumerate(specs):
        assert (spec.run_dir / "stdout.log").read_text() == f"run {i} 1\n"  # env reached the job
        assert (spec.run_dir / ".autopot_exit").read_text().strip() == "0"
        assert json.loads((spec.run_dir / INTENT_FILE).read_text())["open"] is False
    # one squeue per poll for all of them, far fewer than runs
    assert h.executor.stats.squeue == h.executor.stats.polls < 50


def test_exit_3_is_failed_with_exit_code(slurm: None, tmp_path: Path) -> None:
    (spec,) = make_runs(tmp_path, "work", ['echo "bad input on line 7" >&2; exit 3'])

    async def scenario() -> Harness:
        h = Harness()
        (job_id,) = await h.executor.submit([spec])
        assert job_id.isdigit()
        await h.wait_final([spec.label])
        await h.executor.close()
        return h

    h = asyncio.run(scenario())
    final = h.final(spec.label)
    assert final.state == "FAILED" and final.exit_code == 3 and not final.retry
    assert "exit code 3" in final.cause and "bad input on line 7" in final.cause
    assert (spec.run_dir / "slurm_job.sh").is_file()


def test_cancel_behind_autopots_back_is_detected(slurm: None, tmp_path: Path) -> None:
    (spec,) = make_runs(tmp_path, "work", ["sleep 120"])

    async def scenario() -> Harness:
        h = Harness()
        (job_id,) = await h.executor.submit([spec])
        await h.wait(lambda: any(o.state == "RUNNING" for o in h.of(spec.label)), timeout=60)
        subprocess.run(["scancel", job_id], check=True)  # not through autopot
        await h.wait_final([spec.label])
        await h.executor.close()
        return h

    h = asyncio.run(scenario())
    final = h.final(spec.label)
    assert final.state == "CANCELLED"
    assert "outside autopot" in final.cause


def test_stop_cancels_running_and_pending_jobs(slurm: None, tmp_path: Path) -> None:
    specs = make_runs(tmp_path, "work", ["sleep 120"] * 3)
    (single,) = make_runs(tmp_path, "other", ["sleep 120"], {"time": "10"})

    async def scenario() -> Harness:
        h = Harness()
        ids = await h.executor.submit([*specs, single])
        await h.wait(lambda: any(o.state == "RUNNING" for o in h.outcomes), timeout=60)
        assert set(ids) <= squeue_ids()
        await h.executor.cancel([s.label for s in [*specs, single]])
        await h.wait_final([s.label for s in [*specs, single]])
        await h.executor.close()
        assert not set(ids) & squeue_ids()
        return h

    h = asyncio.run(scenario())
    assert h.executor.stats.sbatch == 2 and h.executor.stats.scancel == 1
    for spec in [*specs, single]:
        final = h.final(spec.label)
        assert final.state == "CANCELLED" and "cancelled by autopot" in final.cause


def test_crash_between_sbatch_and_recording_adopts_instead_of_resubmitting(
    slurm: None, tmp_path: Path
) -> None:
    specs = make_runs(tmp_path, "work", ["echo x >> started.log; sleep 4"] * 2)

    async def scenario() -> tuple[list[str], Harness, Harness]:
        first = Harness()
        ids = await first.executor.submit(specs)
        await first.executor.close()  # the orchestrator "dies": ids never reach the database
        second = Harness()  # the restarted orchestrator resubmits the runs that never started
        for spec in specs:
            spec.attempt = 2
        again = await second.executor.submit(specs)
        assert again == ids
        await second.wait_final([s.label for s in specs])
        await second.executor.close()
        return ids, first, second

    ids, first, second = asyncio.run(scenario())
    assert first.executor.stats.sbatch == 1 and second.executor.stats.sbatch == 0
    for spec in specs:
        assert second.final(spec.label).state == "FINISHED"
        assert (spec.run_dir / "started.log").read_text() == "x\n"  # ran exactly once


def test_intent_without_job_is_submitted_afresh(slurm: None, tmp_path: Path) -> None:
    (spec,) = make_runs(tmp_path, "work", ["echo x >> started.log"])
    # a crash after writing the intent and before sbatch ran
    (spec.run_dir / INTENT_FILE).write_text(
        json.dumps(
            {
                "open": True,
                "token": "0123456789abcdef",
                "index": None,
                "job_name": "work-0123456789abcdef",
                "time": 0,
            }
        )
    )

    async def scenario() -> Harness:
        h = Harness()
        await h.executor.submit([spec])
        await h.wait_final([spec.label])
        await h.executor.close()
        return h

    h = asyncio.run(scenario())
    assert h.executor.stats.sbatch == 1 and h.final(spec.label).state == "FINISHED"
    assert (spec.run_dir / "started.log").read_text() == "x\n"


def test_adopt_known_job_and_refuse_unknown(slurm: None, tmp_path: Path) -> None:
    (spec,) = make_runs(tmp_path, "work", ["sleep 2"])

    async def scenario() -> tuple[Harness, bool, bool]:
        first = Harness()
        (job_id,) = await first.executor.submit([spec])
        await first.executor.close()
        second = Harness()
        known = await second.executor.adopt(spec.label, job_id, spec.run_dir)
        unknown = await second.executor.adopt("work.99", "987654", tmp_path)
        await second.wait_final([spec.label])
        await second.executor.close()
        return second, known, unknown

    second, known, unknown = asyncio.run(scenario())
    assert known and not unknown
    assert second.final(spec.label).state == "FINISHED"


def test_adopt_without_recorded_id_uses_the_intent(slurm: None, tmp_path: Path) -> None:
    """What the engine's reconcile can do for a SUBMITTED run with no executor id."""
    (spec,) = make_runs(tmp_path, "work", ["echo x >> started.log; sleep 2"])

    async def scenario() -> tuple[str, Harness, bool]:
        first = Harness()
        (job_id,) = await first.executor.submit([spec])
        await first.executor.close()
        second = Harness()
        adopted = await second.executor.adopt(spec.label, "", spec.run_dir)
        await second.wait_final([spec.label])
        await second.executor.close()
        return job_id, second, adopted

    job_id, second, adopted = asyncio.run(scenario())
    assert adopted and second.executor.stats.sbatch == 0
    final = second.final(spec.label)
    assert final.state == "FINISHED" and final.executor_id == job_id
    assert (spec.run_dir / "started.log").read_text() == "x\n"
