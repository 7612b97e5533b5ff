"""Engine figures: event latency, orchestrator overhead per task, toy workflow wall time.

    python bench/engine.py [--tasks 10000] [--latency-runs 300] [--toy 200]

* latency: another OS process commits run states through ZEO, one at a time; the
  orchestrator records the time from that commit to its callback firing.
* overhead: 10,000 no-op tasks through the whole engine (create, claim, submit, state
  writes, futures) with an in-process executor that ends each task at once; the
  orchestrator's CPU time divided by the number of tasks.
* toy: the engine tests' toy workflow (N work tasks then one collect), end to end
  through the CLI on the local executor.

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EXECUTORS = '''
from autopot.executors.base import Executor, Outcome


class InstantExecutor(Executor):
    """Ends every task as soon as it is submitted: measures the engine alone."""

    name = "instant"

    async def submit(self, specs):
        ids = []
        for spec in specs:
            self.report(Outcome(spec.label, "RUNNING", executor_id="0"))
            self.report(Outcome(spec.label, "FINISHED", exit_code=0, executor_id="0"))
            ids.append("0")
        return ids

    async def cancel(self, labels):
        return None


class HoldExecutor(Executor):
    """Never ends a task itself: another process commits the states."""

    name = "hold"

    async def submit(self, specs):
        return ["0"] * len(specs)

    async def cancel(self, labels):
        return None
'''

ORCHESTRATOR = """
import os, subprocess, sys, time

RESULTS = {}


def populate_arg_parser(parser):
    parser.add_argument("--mode", default="overhead")
    parser.add_argument("--n", type=int, default=100)


async def main(workflow, mode, n):
    engine = workflow.engine
    if mode == "overhead":
        t0, c0 = time.perf_counter(), time.process_time()
        runs = workflow.noop.create_tasks(i=list(range(n)))
        await runs
        RESULTS["cpu_s"] = time.process_time() - c0
        RESULTS["wall_s"] = time.perf_counter() - t0
        return
    engine.measure_latency = True
    fired = []
    workflow.noop.on("FINISHED")(lambda wf, run: fired.append(time.time()))
    runs = workflow.held.create_tasks(i=list(range(n)))
    await _until_submitted(workflow, runs)
    proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "committer.py"),
                             str(workflow.directory), str(n)])
    await runs
    proc.wait()
    RESULTS["latencies"] = list(engine.stats.latencies)


async def _until_submitted(workflow, runs):
    import asyncio
    while any(r.state == "CREATED" for r in runs):
        await asyncio.sleep(0.05)
        workflow.store.sync()
"""

COMMITTER = '''
"""Commits RUNNING then FINISHED for each held run, one transaction at a time."""
import sys, time
from autopot.store.database import Store, WorkflowPaths
from autopot.store.records import get_run

directory, n = sys.argv[1], int(sys.argv[2])
store = Store.open_zeo(WorkflowPaths(directory).socket)
for i in range(1, n + 1):
    def finish(root, i=i):
        get_run(root, f"held.{i}").set_state("RUNNING")
    store.transact(finish)
    time.sleep(0.01)
    def done(root, i=i):
        get_run(root, f"held.{i}").set_state("FINISHED")
    store.transact(done)
    time.sleep(0.01)
store.close()
'''


def make_workflow(base: Path) -> Path:
    for task in ("noop", "held"):
        t = base / "tasks" / task
        t.mkdir(parents=True)
        (t / "bd.yaml").write_text(f"task: {task}\njob:\n  i: int\nrun: {{}}\n")
        (t / "run.sh").write_text("#!/bin/sh\ntrue\n")
        (t / "doIt.py").write_text("")
    (base / "bench_executors.py").write_text(EXECUTORS)
    (base / "bench_orchestrator.py").write_text(ORCHESTRATOR)
    (base / "committer.py").write_text(COMMITTER)
    (base / "motoko.yaml").write_text(
        textwrap.dedent("""
        task_managers:
          noop: {template: tasks/noop, executor: {name: "bench_executors:InstantExecutor"}}
          held: {template: tasks/held, executor: {name: "bench_executors:HoldExecutor"}}
        orchestrator: bench_orchestrator.main
    """)
    )
    return base / "motoko.yaml"


def run(motoko: Path, mode: str, n: int, run_name: str) -> dict:
    from autopot.engine.runner import run_orchestrator

    status = run_orchestrator(motoko, run_name=run_name, argv=["--mode", mode, "--n", str(n)])
    if status != 0:
        raise SystemExit(f"bench workflow {mode} failed with status {status}")
    import bench_orchestrator  # loaded by the runner from the workflow directory

    return dict(bench_orchestrator.RESULTS)


def toy_wall(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "toy"
        shutil.copytree(
            ROOT / "tests" / "engine" / "toy",
            dest,
            ignore=shutil.ignore_patterns("autopot-workflow", "__pycache__"),
        )
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "autopot.cli",
                "orchestrator",
                "start",
                "-c",
                str(dest / "motoko.yaml"),
                "--n",
                str(n),
            ],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"toy workflow failed:\n{proc.stdout}\n{proc.stderr}")
        return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--latency-runs", type=int, default=300)
    parser.add_argument("--toy", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        motoko = make_workflow(Path(tmp))
        over = run(motoko, "overhead", args.tasks, "overhead")
        lat = run(motoko, "latency", args.latency_runs, "latency")["latencies"]
    lat_ms = sorted(x * 1000 for x in lat)
    p99 = lat_ms[min(len(lat_ms) - 1, int(round(0.99 * (len(lat_ms) - 1))))]
    toy = toy_wall(args.toy)
    figures = {
        "latency_median_ms": round(statistics.median(lat_ms), 2),
        "latency_p99_ms": round(p99, 2),
        "latency_samples": len(lat_ms),
        "overhead_ms_per_task": round(over["cpu_s"] / args.tasks * 1000, 3),
        "overhead_wall_s": round(over["wall_s"], 2),
        "tasks": args.tasks,
        "toy200_wall_s": round(toy, 2),
    }
    print(
        f"event latency: median {figures['latency_median_ms']} ms, p99 {figures['latency_p99_ms']} ms "
        f"over {len(lat_ms)} state changes"
    )
    print(
        f"orchestrator CPU per task: {figures['overhead_ms_per_task']} ms ({args.tasks} no-op tasks, "
        f"{figures['overhead_wall_s']} s wall)"
    )
    print(
        f"toy workflow ({args.toy} work + 1 collect, local executor): {figures['toy200_wall_s']} s wall"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
