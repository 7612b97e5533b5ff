"""A small sp_calc-like workflow run cold, then warm, in the same directory: the records
(states, exit codes, causes, quantities, files with their sha256) are the same."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from autopot.store.database import open_store

from .conformance import STOCK_RUN_SH

DOIT = """\
import logging
import sys

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

from autopot.task import TaskContext

logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")  # (pids at INFO)
logging.getLogger("spc").setLevel(logging.INFO)
with TaskContext.open() as ctx:
    i = int(ctx.params["i"])
    if i == 3:
        raise ValueError(f"configuration {i} is broken")
    atoms = bulk("Cu", cubic=True)
    atoms.rattle(0.02, seed=i)
    atoms.calc = EMT()
    energy = atoms.get_potential_energy()
    ctx.push("energy", float(energy))
    ctx.push("forces", np.asarray(atoms.get_forces()))
    (ctx.run_dir / "result.txt").write_text(f"{energy:.10f}\\n")
    ctx.add_file("result.txt")
    print("energy", round(float(energy), 8))
    logging.getLogger("spc").info("run %d done", i)
"""

ORCHESTRATOR = """\
async def main(workflow):
    await workflow.spc.create_tasks(i=[0, 1, 2, 3])
"""

#: files whose content says when or by which process, not what
VOLATILE = {"autopot_run.json", ".autopot_pid", ".autopot_outcome.json"}


def make_workflow(base: Path) -> Path:
    template = base / "tasks" / "spc"
    template.mkdir(parents=True)
    (template / "bd.yaml").write_text("task: spc\njob:\n  i: int\nrun: {}\n")
    (template / "run.sh").write_text(STOCK_RUN_SH)
    (template / "doIt.py").write_text(DOIT)
    (base / "spc_orchestrator.py").write_text(ORCHESTRATOR)
    (base / "motoko.yaml").write_text(
        textwrap.dedent("""\
        directory: autopot-workflow
        executor: {name: local, max_parallel: 2}
        task_managers:
          spc: tasks/spc
        orchestrator: spc_orchestrator.main
        """)
    )
    return base / "motoko.yaml"


def records(workflow_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    with open_store(workflow_dir, read_only=True) as store:
        for run in store.root.task_types["spc"].runs.values():
            out[run.label] = {
                "state": run.state,
                "exit_code": run.exit_code,
                "cause": run.cause,
                "attempts": run.attempts,
                "states": [h[1] for h in run.history],
                "quantities": {
                    k: np.asarray(v.value if hasattr(v, "value") else v).tolist()
                    for k, v in sorted(dict(run.quantities).items())
                },
                "manifest": {
                    k: tuple(v) for k, v in sorted(run.manifest.items()) if k not in VOLATILE
                },
            }
    return out


def start(motoko: Path, warm: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "autopot.cli", "-v", "orchestrator", "start", "-c", str(motoko)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AUTOPOT_WARM": warm},
    )
    workflow_dir = motoko.parent / "autopot-workflow"
    result = records(workflow_dir)
    shutil.rmtree(workflow_dir)
    return proc, result


def test_the_same_workflow_warm_and_cold_records_the_same(tmp_path: Path) -> None:
    motoko = make_workflow(tmp_path)
    cold_proc, cold = start(motoko, "0")
    warm_proc, warm = start(motoko, "1")
    assert cold_proc.returncode == warm_proc.returncode == 1, cold_proc.stderr[-2000:]
    assert "warm-start server ready" in warm_proc.stderr
    assert "warm-start server" not in cold_proc.stderr
    assert warm == cold
    assert [r["state"] for _, r in sorted(cold.items())] == ["FINISHED"] * 3 + ["FAILED"]
    broken = cold["spc.4"]
    assert broken["exit_code"] == 1 and "configuration 3 is broken" in broken["cause"]
    assert {"result.txt", "stdout.log", "stderr.log"} <= set(cold["spc.1"]["manifest"])
    assert len(cold["spc.1"]["quantities"]["forces"]) == 4
    assert cold["spc.1"]["manifest"]["stderr.log"][1] > 0  # the task's own log line
