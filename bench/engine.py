"""Engine figures: event latency, orchestrator overhead per task, toy workflow wall time.

    python bench/engine.py [--tasks 10000] [--latency-runs 300] [--toy 200] [--runs 30]

* latency: another OS process commits run states through ZEO, one at a time; the
  orchestrator records the time from that commit to its callback firing.
* overhead: 10,000 no-op tasks through the whole engine (create, claim, submit, state
  writes, futures) with an in-process executor that ends each task at once; the
  orchestrator's CPU time divided by the number of tasks.
* toy: the engine tests' toy workflow (N work tasks then one collect), end to end
  through the CLI on the local executor, warm (the default) and cold (``AUTOPOT_WARM=0``).
* per-run overhead, warm vs cold: N sp_calc-like runs (stock ``run.sh``; ``doIt.py``
  imports ASE and autopot, opens its TaskContext over ZEO, one EMT single point, pushes
  the energy) one at a time on the local executor, with its fork server (``warm: true``)
  and without (``warm: false``). Overhead per run = wall time per run minus the work
  the task itself timed; also the median time from the process start (RUNNING) to
  FINISHED in the database.

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
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
    if mode.startswith("spc_"):
        manager = getattr(workflow, mode)
        t0 = time.perf_counter()
        runs = await manager.create_tasks(i=list(range(n)))
        RESULTS["wall_s"] = time.perf_counter() - t0
        RESULTS["work_s"] = [float(r.quantities["work_s"]) for r in runs]
        RESULTS["states"] = sorted({r.state for r in runs})
        RESULTS["start_to_finished_s"] = [_span(r.record.history) for r in runs]
        return
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


def _span(history):
    # seconds from the run's start (its process launched) to FINISHED in the database
    started = min(t for t, state, _ in history if state == "RUNNING")
    return min(t for t, state, _ in history if state == "FINISHED" and t >= started) - started


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


#: sp_calc in miniature: what a paper-scale reference run costs besides its ~50 ms of work.
SPC_DOIT = """\
import time

from ase.build import bulk
from ase.calculators.emt import EMT

from autopot.task import TaskContext

with TaskContext.open() as ctx:
    t0 = time.perf_counter()
    atoms = bulk("Cu", cubic=True).repeat(2)
    atoms.rattle(0.01, seed=int(ctx.params["i"]))
    atoms.calc = EMT()
    ctx.push("energy", float(atoms.get_potential_energy()))
    ctx.push("max_force", float(abs(atoms.get_forces()).max()))
    ctx.push("work_s", time.perf_counter() - t0)
"""
STOCK_RUN_SH = '#!/bin/sh\nexec "${AUTOPOT_PYTHON:-python3}" doIt.py\n'


def make_workflow(base: Path) -> Path:
    for task in ("spc_cold", "spc_warm"):
        t = base / "tasks" / task
        t.mkdir(parents=True)
        (t / "bd.yaml").write_text(f"task: {task}\njob:\n  i: int\nrun: {{}}\n")
        (t / "run.sh").write_text(STOCK_RUN_SH)
        (t / "doIt.py").write_text(SPC_DOIT)
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
          spc_cold: {template: tasks/spc_cold, executor: {name: local, max_parallel: 1, warm: false}}
          spc_warm: {template: tasks/spc_warm, executor: {name: local, max_parallel: 1, warm: true}}
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


def toy_wall(n: int, warm: bool = True) -> float:
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
            env={**os.environ, "AUTOPOT_WARM": "1" if warm else "0"},
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"toy workflow failed:\n{proc.stdout}\n{proc.stderr}")
        return wall


def per_run_overhead(motoko: Path, n: int) -> dict:
    """Per-run figures of N sp_calc-like runs, cold (``sh ./run.sh``) then warm (forked)."""
    figures: dict = {"runs": n}
    for mode in ("cold", "warm"):
        res = run(motoko, f"spc_{mode}", n, f"spc-{mode}")
        if res["states"] != ["FINISHED"]:
            raise SystemExit(f"{mode} runs ended {res['states']}")
        per_run = res["wall_s"] / n
        work = statistics.median(res["work_s"])
        figures[f"{mode}_per_run_ms"] = round(per_run * 1000, 1)
        figures[f"{mode}_overhead_ms"] = round((per_run - work) * 1000, 1)
        figures[f"{mode}_start_to_finished_ms"] = round(
            statistics.median(res["start_to_finished_s"]) * 1000, 1
        )
        figures["work_ms"] = round(work * 1000, 1)
        print(
            f"{mode}: {figures[f'{mode}_per_run_ms']} ms per run, of which "
            f"{figures['work_ms']} ms work: overhead {figures[f'{mode}_overhead_ms']} ms "
            f"(median start->FINISHED {figures[f'{mode}_start_to_finished_ms']} ms, {n} runs)"
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--latency-runs", type=int, default=300)
    parser.add_argument("--toy", type=int, default=200)
    parser.add_argument("--runs", type=int, default=30, help="sp_calc-like runs per mode")
    parser.add_argument(
        "--only-overhead", action="store_true", help="only the warm/cold per-run figures"
    )
    args = parser.parse_args()
    if args.only_overhead:
        with tempfile.TemporaryDirectory() as tmp:
            figures = per_run_overhead(make_workflow(Path(tmp)), args.runs)
        print(json.dumps(figures))
        return

    with tempfile.TemporaryDirectory() as tmp:
        motoko = make_workflow(Path(tmp))
        over = run(motoko, "overhead", args.tasks, "overhead")
        lat = run(motoko, "latency", args.latency_runs, "latency")["latencies"]
        per_run = per_run_overhead(motoko, args.runs)
    lat_ms = sorted(x * 1000 for x in lat)
    p99 = lat_ms[min(len(lat_ms) - 1, int(round(0.99 * (len(lat_ms) - 1))))]
    toy = toy_wall(args.toy)
    toy_cold = toy_wall(args.toy, warm=False)
    figures = {
        "latency_median_ms": round(statistics.median(lat_ms), 2),
        "latency_p99_ms": round(p99, 2),
        "latency_samples": len(lat_ms),
        "overhead_ms_per_task": round(over["cpu_s"] / args.tasks * 1000, 3),
        "overhead_wall_s": round(over["wall_s"], 2),
        "tasks": args.tasks,
        "toy200_wall_s": round(toy, 2),
        "toy200_cold_wall_s": round(toy_cold, 2),
        **per_run,
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
        f"toy workflow ({args.toy} work + 1 collect, local executor): {figures['toy200_wall_s']} s wall "
        f"warm, {figures['toy200_cold_wall_s']} s cold"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
