"""SLURM executor figures: 200 no-op tasks on the real SLURM versus the local executor.

    python bench/slurm.py [--tasks 200] [--poll-interval 1.0] [--max-poll-interval 30]

The same fan-out (N prepared run directories whose run.sh does nothing) goes through
SlurmExecutor (one job array) and through LocalExecutor (asyncio subprocesses, one per
core). Counted: sbatch and squeue calls (one squeue per poll covers every job); timed:
from submit() to the last terminal outcome. Needs a running SLURM
(../shared/ci/setup-slurm.sh). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from autopot.executors.base import Outcome, RunSpec
from autopot.executors.local import LocalExecutor
from autopot.executors.slurm import SlurmExecutor

TERMINAL = {"FINISHED", "FAILED", "CANCELLED"}


def prepare(base: Path, n: int) -> list[RunSpec]:
    specs = []
    for i in range(1, n + 1):
        run_dir = base / "runs" / "noop" / str(i)
        run_dir.mkdir(parents=True)
        (run_dir / "run.sh").write_text("#!/bin/sh\nexit 0\n")
        specs.append(RunSpec("noop", i, f"noop.{i}", run_dir, {}, {"slurm_options": {"time": "5"}}))
    return specs


async def fan_out(
    executor_cls: type, specs: list[RunSpec], **options: object
) -> tuple[float, object, list[Outcome]]:
    ended: list[Outcome] = []
    done = asyncio.Event()

    def report(outcome: Outcome) -> None:
        if outcome.state in TERMINAL:
            ended.append(outcome)
            if len(ended) == len(specs):
                done.set()

    executor = executor_cls(report, **options)
    t0 = time.perf_counter()
    await executor.submit(specs)
    await asyncio.wait_for(done.wait(), 1800)
    wall = time.perf_counter() - t0
    await executor.close()
    return wall, executor, ended


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--max-poll-interval", type=float, default=30.0)
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path.home(),
        help="where the run directories go; must be visible from the compute nodes",
    )
    args = parser.parse_args()
    if shutil.which("sbatch") is None:
        sys.exit("bench/slurm.py: sbatch not found; start SLURM with ../shared/ci/setup-slurm.sh")
    with tempfile.TemporaryDirectory(prefix="autopot-bench-slurm-", dir=args.dir) as tmp:
        base = Path(tmp)
        wall_slurm, slurm, ended = asyncio.run(
            fan_out(
                SlurmExecutor,
                prepare(base / "slurm", args.tasks),
                poll_interval=args.poll_interval,
                max_poll_interval=args.max_poll_interval,
            )
        )
        bad = [o for o in ended if o.state != "FINISHED"]
        if bad:
            sys.exit(f"bench/slurm.py: {len(bad)} SLURM runs did not finish: {bad[0]}")
        print(
            f"slurm: {args.tasks} tasks in {wall_slurm:.2f} s; sbatch {slurm.stats.sbatch}, "
            f"squeue {slurm.stats.squeue}, scontrol {slurm.stats.scontrol}, sacct {slurm.stats.sacct}",
            flush=True,
        )
        wall_local, local, ended = asyncio.run(
            fan_out(LocalExecutor, prepare(base / "local", args.tasks))
        )
        assert all(o.state == "FINISHED" for o in ended)
        print(
            f"local: {args.tasks} tasks in {wall_local:.2f} s ({local.max_parallel} at a time)",
            flush=True,
        )
    print(
        json.dumps(
            {
                "tasks": args.tasks,
                "sbatch_calls": slurm.stats.sbatch,
                "squeue_calls": slurm.stats.squeue,
                "wall_s_slurm": round(wall_slurm, 2),
                "wall_s_local": round(wall_local, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
