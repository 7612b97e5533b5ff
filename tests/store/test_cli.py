"""`autopot runs` / `autopot show` against a real database, with and without a server."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autopot.errors import StoreError
from autopot.store.database import open_store
from autopot.store.records import create_runs, get_run
from autopot.store.schema import TaskSchema


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autopot.cli", *args], capture_output=True, text=True, timeout=60
    )


def populate(wf: Path, template: Path) -> None:
    schema = TaskSchema.load(template)
    with open_store(wf) as store:
        store.transact(
            lambda root: create_runs(
                root, schema, {"cfg_fname": [f"{i}.cfg" for i in range(5)]}, run_name="demo"
            )
        )

        def finish(root) -> None:
            for i in range(1, 6):
                run = get_run(root, f"sp_calc.{i}")
                run.set_state("SUBMITTED")
                run.push("energy", -1.0 * i)
                run.push("forces", np.zeros((4, 3)))
                run.set_state(
                    "FINISHED" if i != 5 else "FAILED",
                    "" if i != 5 else "exit code 2",
                    exit_code=0 if i != 5 else 2,
                )

        store.transact(finish)


def test_runs_formats_and_show(tmp_path: Path, template: Path) -> None:
    wf = tmp_path / "wf"
    populate(wf, template)
    proc = cli(
        "runs",
        "sp_calc",
        "-W",
        str(wf),
        "--where",
        "state = FINISHED, energy < -2",
        "--format",
        "json",
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["id"] for r in rows] == ["sp_calc.3", "sp_calc.4"]
    assert rows[0]["q.forces"] == [[0.0] * 3] * 4 and rows[0]["job.cfg_fname"] == "2.cfg"
    proc = cli(
        "runs", "sp_calc", "-W", str(wf), "--format", "csv", "--columns", "id,state,q.energy"
    )
    table = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(table) == 5 and table[4] == {
        "id": "sp_calc.5",
        "state": "FAILED",
        "q.energy": "-5.0",
    }
    proc = cli("runs", "sp_calc", "-W", str(wf))  # a table that fits 80 columns, scalars first
    assert "sp_calc.1" in proc.stdout and max(map(len, proc.stdout.splitlines())) <= 80, proc.stdout
    proc = cli("runs", "sp_calc", "-W", str(wf), "--columns", "id,q.forces,q.energy")
    assert "[4x3] 0…0" in proc.stdout, proc.stdout
    proc = cli("show", "sp_calc.5", "-W", str(wf))
    assert proc.returncode == 0 and "FAILED" in proc.stdout and "exit code 2" in proc.stdout
    assert 'cfg_fname = "4.cfg"' in proc.stdout
    # a run directory with logs: their tails, the manifest and the timings are shown
    run_dir = wf / "runs" / "sp_calc" / "3"
    run_dir.mkdir(parents=True)
    (run_dir / "stdout.log").write_text("".join(f"line {i}\n" for i in range(30)))
    (run_dir / "stderr.log").write_text("warning: something\n")
    with open_store(wf) as store:

        def record(root) -> None:
            from autopot.store.files import manifest

            run = get_run(root, "sp_calc.3")
            run.directory = "runs/sp_calc/3"
            run.manifest = manifest(run_dir)

        store.transact(record)
    proc = cli("show", "sp_calc.3", "-W", str(wf), "--lines", "3")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert (
        "line 29" in out
        and "line 27" in out
        and "line 26" not in out
        and "warning: something" in out
    )
    assert "stdout.log" in out.split("--- stdout.log")[0]  # in the files manifest
    assert "energy = -3.0" in out and "forces = array[4, 3]" in out
    for word in ("history:", "CREATED", "SUBMITTED", "FINISHED", "provenance:", "numpy"):
        assert word in out, word


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


def test_db_serve_status_stop_and_queries_meanwhile(tmp_path: Path, template: Path) -> None:
    import os
    import signal
    import stat
    import time

    from autopot.store.database import WorkflowPaths, socket_alive

    wf = tmp_path / "wf"
    populate(wf, template)
    paths = WorkflowPaths(wf)
    serve = subprocess.Popen(
        [sys.executable, "-m", "autopot.cli", "db", "serve", "-W", str(wf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket_alive(paths.socket):
            assert serve.poll() is None and time.monotonic() < deadline, serve.communicate()
            time.sleep(0.05)
        assert stat.S_IMODE(os.stat(paths.socket).st_mode) == 0o600
        proc = cli("runs", "sp_calc", "-W", str(wf), "-w", "state = FAILED", "--format", "json")
        assert [r["id"] for r in json.loads(proc.stdout)] == ["sp_calc.5"], proc.stderr
        assert "server: pid" in cli("db", "status", "-W", str(wf)).stdout
        proc = cli("db", "serve", "-W", str(wf))  # a second server on the same directory
        assert proc.returncode == 2 and "already listening" in proc.stderr
        proc = cli("db", "stop", "-W", str(wf))
        assert proc.returncode == 0, proc.stderr
        assert serve.wait(30) == 0  # the foreground command follows its server
        assert not socket_alive(paths.socket)
        assert "server: not running" in cli("db", "status", "-W", str(wf)).stdout
        proc = cli("db", "stop", "-W", str(wf))
        assert proc.returncode == 2 and "no database server is running" in proc.stderr
        # SIGTERM to the foreground command stops its server too
        serve = subprocess.Popen(
            [sys.executable, "-m", "autopot.cli", "db", "serve", "-W", str(wf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while not socket_alive(paths.socket):
            assert serve.poll() is None, serve.communicate()
            time.sleep(0.05)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(30) == 0
        assert not socket_alive(paths.socket) and not paths.server_pid.exists()
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        from autopot.store.server import server_pid, stop_server

        pid = server_pid(wf)  # never leave a server behind, whatever failed above
        if pid is not None:
            stop_server(pid)


def test_db_serve_refuses_open_tcp_without_tls(tmp_path: Path) -> None:
    proc = cli("db", "serve", "-W", str(tmp_path / "wf"), "--tcp", "0.0.0.0:9")
    assert proc.returncode == 2 and "needs TLS" in proc.stderr
    proc = cli(
        "db", "serve", "-W", str(tmp_path / "wf"), "--tcp", "127.0.0.1:9", "--tls-cert", "x.pem"
    )
    assert proc.returncode == 2 and "--tls-cert, --tls-key and --tls-ca together" in proc.stderr


_HOLD = """
import sys, time
from autopot.store.database import open_store
from autopot.store.records import get_run
store = open_store(sys.argv[1])  # embedded, writable: holds the lock
store.transact(lambda root: get_run(root, "sp_calc.1").push("late", 1.0))
print("holding", flush=True)
time.sleep(60)
"""


def test_runs_read_only_while_another_process_holds_the_file(
    tmp_path: Path, template: Path
) -> None:
    wf = tmp_path / "wf"
    populate(wf, template)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(wf)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        proc = cli("runs", "sp_calc", "-W", str(wf), "-w", "late = 1.0", "--format", "json")
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr  # no lock needed, no noise
        assert [r["id"] for r in json.loads(proc.stdout)] == ["sp_calc.1"]
        proc = cli("show", "sp_calc.1", "-W", str(wf))
        assert proc.returncode == 0 and "late = 1.0" in proc.stdout
        with open_store(wf, read_only=True) as store:
            assert len(store.root.task_types["sp_calc"].runs) == 5
        with pytest.raises(StoreError, match="locked by another process"):
            open_store(wf)
    finally:
        holder.kill()
        holder.wait()
