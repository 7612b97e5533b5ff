"""TaskContext from real task processes: four at once through ZEO, each on its own run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from autopot.store import query
from autopot.store.database import open_store
from autopot.store.files import write_marker
from autopot.store.records import create_runs, get_run
from autopot.store.schema import TaskSchema

TASK = """
import sys
import numpy as np
from autopot.task import TaskContext

for run_dir in sys.argv[1:]:
    with TaskContext.open(run_dir) as ctx:
        for k in range(10):
            ctx.push("energy", -float(k), step=k)
            ctx.flush()  # one transaction per step: many concurrent small commits
        ctx.push("forces", np.full((3, 3), float(ctx.run_id)))
        ctx.path("out.txt").write_text(ctx.params["cfg_fname"])
        ctx.add_file("out.txt")
        if ctx.params["cfg_fname"] == "bad.cfg":
            raise RuntimeError("boom")
        if ctx.params["cfg_fname"] == "exit0.cfg":
            sys.exit(0)
"""


def test_four_task_processes_push_concurrently(zeo_server: Path, template: Path) -> None:
    schema = TaskSchema.load(template)
    names = [f"{i}.cfg" for i in range(10)] + ["bad.cfg", "exit0.cfg"]
    with open_store(zeo_server) as store:
        pairs = store.transact(
            lambda root: [
                (r.id, r.job.params["cfg_fname"])
                for r, _ in create_runs(root, schema, {"cfg_fname": names}, run_name="ctx")
            ]
        )
        run_dirs = []
        for run_id, _ in pairs:
            run_dir = zeo_server / "runs" / "sp_calc" / str(run_id)
            run_dir.mkdir(parents=True)
            write_marker(
                run_dir, {"workflow_dir": str(zeo_server), "task": "sp_calc", "run_id": run_id}
            )
            run_dirs.append(str(run_dir))

        def submit(root) -> None:
            for run_id, _ in pairs:
                get_run(root, f"sp_calc.{run_id}").set_state(
                    "SUBMITTED", directory=f"runs/sp_calc/{run_id}", executor="test"
                )

        store.transact(submit)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", TASK, *run_dirs[i::4]], stderr=subprocess.PIPE, text=True
            )
            for i in range(4)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs].count(0) == 3, errors  # the one with bad.cfg raised
        store.sync()
        tt = store.root.task_types["sp_calc"]
        assert query.count(tt, "state = FINISHED") == 11
        assert query.count(tt, "state = FAILED") == 1
        assert sum(len(tt.by_state[s]) for s in tt.by_state) == 12  # each run indexed exactly once
        for run_id, cfg in pairs:
            run = get_run(store.root, f"sp_calc.{run_id}")
            assert [k for k, _ in run.quantities["energy"]] == list(range(10))
            assert run.host and run.started and run.ended
            assert "out.txt" in run.manifest and run.manifest["out.txt"][1] == len(cfg)
            if cfg == "bad.cfg":
                assert run.cause == "RuntimeError: boom" and "forces" not in run.quantities
                assert "traceback.txt" in run.manifest
            else:
                assert run.quantities["forces"][0, 0] == run_id
            assert [h[1] for h in run.history] == [
                "CREATED",
                "SUBMITTED",
                "RUNNING",
                "FAILED" if cfg == "bad.cfg" else "FINISHED",
            ]
