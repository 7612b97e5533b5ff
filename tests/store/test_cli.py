"""`autopot runs` / `autopot show` against a real database, with and without a server."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from autopot.store.database import open_store
from autopot.store.records import create_runs, get_run
from autopot.store.schema import TaskSchema


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autopot.cli", *args], capture_output=True, text=True, timeout=60)


def populate(wf: Path, template: Path) -> None:
    schema = TaskSchema.load(template)
    with open_store(wf) as store:
        store.transact(lambda root: create_runs(root, schema, {"cfg_fname": [f"{i}.cfg" for i in range(5)]},
                                                run_name="demo"))

        def finish(root) -> None:
            for i in range(1, 6):
                run = get_run(root, f"sp_calc.{i}")
                run.set_state("SUBMITTED")
                run.push("energy", -1.0 * i)
                run.push("forces", np.zeros((4, 3)))
                run.set_state("FINISHED" if i != 5 else "FAILED", "" if i != 5 else "exit code 2", exit_code=0 if i != 5 else 2)

        store.transact(finish)


def test_runs_formats_and_show(tmp_path: Path, template: Path) -> None:
    wf = tmp_path / "wf"
    populate(wf, template)
    proc = cli("runs", "sp_calc", "-W", str(wf), "--where", "state = FINISHED, energy < -2", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["id"] for r in rows] == ["sp_calc.3", "sp_calc.4"]
    assert rows[0]["q.forces"] == [[0.0] * 3] * 4 and rows[0]["job.cfg_fname"] == "2.cfg"
    proc = cli("runs", "sp_calc", "-W", str(wf), "--format", "csv", "--columns", "id,state,q.energy")
    table = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(table) == 5 and table[4] == {"id": "sp_calc.5", "state": "FAILED", "q.energy": "-5.0"}
    proc = cli("runs", "sp_calc", "-W", str(wf))
    assert "sp_calc.1" in proc.stdout and "array[4, 3]" in proc.stdout
    proc = cli("show", "sp_calc.5", "-W", str(wf))
    assert proc.returncode == 0 and "FAILED" in proc.stdout and "exit code 2" in proc.stdout
    assert "cfg_fname = \"4.cfg\"" in proc.stdout


def test_runs_through_a_live_server(zeo_server: Path, template: Path) -> None:
    schema = TaskSchema.load(template)
    with open_store(zeo_server) as store:  # connects to the live server
        assert store.zeo
        store.transact(lambda root: create_runs(root, schema, {"cfg_fname": "x.cfg"}))
    proc = cli("runs", "sp_calc", "-W", str(zeo_server), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert [r["state"] for r in json.loads(proc.stdout)] == ["CREATED"]
    proc = cli("db", "status", "-W", str(zeo_server))
    assert "server: pid" in proc.stdout and "sp_calc: 1 runs" in proc.stdout


def test_cli_errors_are_one_line(tmp_path: Path, template: Path) -> None:
    wf = tmp_path / "wf"
    populate(wf, template)
    for args, needle in [
        (("runs", "nope", "-W", str(wf)), "unknown task type 'nope'"),
        (("runs", "sp_calc", "-W", str(wf), "--where", "energy"), "where: cannot parse constraint"),
        (("show", "sp_calc.99", "-W", str(wf)), "no run sp_calc.99"),
        (("runs", "sp_calc", "-W", str(tmp_path / "empty")), "no autopot database here"),
    ]:
        proc = cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert needle in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
