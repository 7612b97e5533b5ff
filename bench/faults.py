"""Fault injection on the quick demo: does finished work survive every outage?

    python bench/faults.py [--trials 8] [--seed 1] [--keep DIR]

Each trial copies the repository's motoko.yaml, tasks/ and workflow/ into a fresh
directory, starts ``autopot orchestrator start --preset cu-quick`` and, once a chosen
task is computing (or after a delay), injects one fault:

* ``orchestrator``: SIGKILL of the orchestrator process;
* ``full-crash``: SIGKILL of the orchestrator's process group, its ZEO server and every
  task's process group together (a machine crash, as far as the workflow can tell);
* ``zeo-restart``: SIGKILL of the ZEO server, restarted 5 s later (the orchestrator is
  expected to ride it out);
* ``zeo-gone``: SIGKILL of the ZEO server, not restarted (the orchestrator must give up
  with exit 5 after ``AUTOPOT_DB_RECONNECT_TIMEOUT``, 15 s here);
* ``task``: SIGKILL of a running task's process group (the OOM killer);
* ``disk-full``: the database directory is a small tmpfs that gets filled to the last
  byte; space is freed again before the restart.

Just before the fault an ``autopot archive`` runs against the live workflow. After the
fault, the orchestrator (if it ended) is started once more with the same flags.

Counted:

* ``restarts_first_try_ok``: trials whose first restart (or the surviving orchestrator
  itself) ended with exit 0;
* ``finished_results_lost``: outcome files with state FINISHED on disk right after the
  fault that did not end up ingested (the run record must hold that file's key);
* ``duplicate_sp_calc``: sp_calc jobs with more than one FINISHED run;
* ``archive_false_corruption``: archives during a run that reported damaged data.

Ends with one JSON line. Needs root for the tmpfs mount (that fault is skipped without).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FAULTS = ["orchestrator", "full-crash", "zeo-restart", "zeo-gone", "task", "disk-full"]
POINTS = ["sp_calc", "train", "select", "md_select", None]  # None: a delay
ENV = {
    "AUTOPOT_DB_RECONNECT_TIMEOUT": "15",
    "AUTOPOT_TASK_DB_WAIT": "5",
    "COLUMNS": "200",
}

log = logging.getLogger("bench.faults")


def autopot_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "autopot.cli", *args]


def demo_flags() -> list[str]:
    """``--preset cu-quick``, without the validation stage when the orchestrator has one:
    the faults are about the active-learning loop, and validation doubles a trial's time."""
    proc = subprocess.run(
        autopot_cmd("orchestrator", "start", "-c", str(REPO / "motoko.yaml"), "--help"),
        capture_output=True,
        text=True,
    )
    return ["--preset", "cu-quick"] + (["--no-validate"] if "--no-validate" in proc.stdout else [])


FLAGS: list[str] = []


def start(demo: Path, out: Path) -> subprocess.Popen[bytes]:
    with open(out, "ab") as fh:
        return subprocess.Popen(
            autopot_cmd("orchestrator", "start", "-c", str(demo / "motoko.yaml"), *FLAGS),
            cwd=demo,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **ENV},
        )


def running_tasks(wf: Path, task: str | None = None) -> list[Path]:
    """Run directories whose wrapper started and has not written its exit status."""
    base = wf / "runs"
    pattern = f"{task}/*" if task else "*/*"
    return [
        d
        for d in base.glob(pattern)
        if (d / ".autopot_pid").exists() and not (d / ".autopot_exit").exists()
    ]


def wait_point(proc: subprocess.Popen[bytes], wf: Path, point: str | None, delay: float) -> str:
    deadline = time.time() + (delay if point is None else 90)
    while time.time() < deadline and proc.poll() is None:
        if point is not None and running_tasks(wf, point):
            return f"while {point} runs"
        time.sleep(0.1)
    return f"after {delay:.0f} s" if point is None else f"{point} never seen; at 90 s"


def server_pid(wf: Path) -> int | None:
    try:
        return int((wf / "db" / "zeo.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def kill(pid: int | None, group: bool = False) -> None:
    if pid is None:
        return
    try:
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def task_pids(wf: Path) -> list[int]:
    pids = []
    for d in running_tasks(wf):
        try:
            pids.append(int((d / ".autopot_pid").read_text().strip()))
        except (OSError, ValueError):
            pass
    return pids


def finished_outcomes(wf: Path) -> dict[str, str]:
    """label -> key of every FINISHED outcome file on disk."""
    from autopot.store.outcome import read_outcome

    out = {}
    for d in sorted((wf / "runs").glob("*/*")):
        if not d.name.isdigit():
            continue
        outcome = read_outcome(d)
        if outcome is not None and outcome["state"] == "FINISHED":
            out[f"{d.parent.name}.{d.name}"] = outcome["key"]
    return out


def archive(demo: Path, dest: Path) -> bool:
    """True when the archive reported damaged data (exit 6 / 'damaged')."""
    proc = subprocess.run(
        autopot_cmd("archive", str(dest), "-W", str(demo / "motoko.yaml")),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **ENV},
    )
    damaged = proc.returncode == 6 or "damaged" in proc.stderr
    if damaged:
        log.warning("archive reported damage: %s", proc.stderr.strip())
    return damaged


def mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    cmd = ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)]
    return subprocess.run(cmd, capture_output=True).returncode == 0


def umount(path: Path) -> None:
    for _ in range(50):
        if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
            return
        time.sleep(0.2)


def fill(path: Path) -> Path:
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    for chunk in (65536, 4096, 1):
        try:
            while True:
                os.write(fd, b"\0" * chunk)
        except OSError:
            pass
    os.close(fd)
    return filler


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def settle_orphans(wf: Path, timeout: float = 120) -> None:
    """Tasks keep computing after their orchestrator died; let them end (as on a cluster)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        alive = [p for p in task_pids(wf) if _alive(p)]
        if not alive:
            return
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def trial(index: int, fault: str, point: str | None, delay: float, base: Path) -> dict[str, Any]:
    from autopot.store.database import open_store
    from autopot.store.server import start_server, stop_server

    demo = base / f"trial{index}"
    demo.mkdir()
    shutil.copy(REPO / "motoko.yaml", demo / "motoko.yaml")
    for name in ("tasks", "workflow"):
        shutil.copytree(REPO / name, demo / name, ignore=shutil.ignore_patterns("__pycache__"))
    wf = demo / "autopot-workflow"
    out = demo / "orchestrator.out"
    mounted = False
    if fault == "disk-full":
        mounted = mount_tmpfs(wf / "db", "64m")
        if not mounted:
            fault = "orchestrator"
    result: dict[str, Any] = {"trial": index, "fault": fault}
    try:
        proc = start(demo, out)
        result["point"] = wait_point(proc, wf, point, delay)
        result["archive_damaged"] = archive(demo, base / f"trial{index}.tar.gz")
        first_rc: int | None = None
        if proc.poll() is not None:
            first_rc = proc.returncode
            result["note"] = "ended before the fault"
        elif fault == "orchestrator":
            kill(proc.pid)
        elif fault == "full-crash":
            pids = task_pids(wf)
            kill(proc.pid, group=True)
            kill(server_pid(wf))
            for pid in pids:
                kill(pid, group=True)
        elif fault == "zeo-restart":
            kill(server_pid(wf))
            time.sleep(5)
            start_server(wf)
            first_rc = wait_exit(proc, 600)
        elif fault == "zeo-gone":
            kill(server_pid(wf))
            first_rc = wait_exit(proc, 300)
        elif fault == "task":
            pids = task_pids(wf)
            if pids:
                kill(pids[0], group=True)
            first_rc = wait_exit(proc, 600)
        elif fault == "disk-full":
            filler = fill(wf / "db")
            first_rc = wait_exit(proc, 300)
            filler.unlink()
        if proc.poll() is None and fault in ("orchestrator", "full-crash"):
            proc.wait(timeout=30)
        result["first_rc"] = first_rc
        if first_rc is None or first_rc != 0:
            settle_orphans(wf)
        on_disk = finished_outcomes(wf)
        if first_rc == 0:
            result["restart_rc"] = 0  # it rode the fault out: no restart needed
        else:
            restart = start(demo, out)
            result["restart_rc"] = wait_exit(restart, 900)
            if result["restart_rc"] is None:
                kill(restart.pid, group=True)
        live = server_pid(wf)
        if live is not None and _alive(live):
            stop_server(live)
        with open_store(wf, read_only=True) as store:
            lost = []
            for label, key in on_disk.items():
                task, _, ident = label.rpartition(".")
                run = store.root.task_types[task].runs[int(ident)]
                if run.state != "FINISHED" or run.extra.get("outcome_key") != key:
                    lost.append(label)
            finished_per_job: dict[int, int] = {}
            sp = store.root.task_types.get("sp_calc")
            for run in sp.runs.values() if sp is not None else []:
                if run.state == "FINISHED":
                    finished_per_job[run.job.id] = finished_per_job.get(run.job.id, 0) + 1
            train = store.root.task_types.get("train")
            last_train = max(train.runs.values(), key=lambda r: r.id) if train else None
            result["ts_size"] = last_train.quantities.get("ts_size") if last_train else None
        result["results_on_disk"] = len(on_disk)
        result["lost"] = lost
        result["duplicate_sp_calc"] = sum(n - 1 for n in finished_per_job.values() if n > 1)
    finally:
        for pid in task_pids(wf):
            kill(pid, group=True)
        left = server_pid(wf)
        if left is not None and _alive(left):
            stop_server(left)
        if mounted:
            umount(wf / "db")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="keep trial directories here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    rng = random.Random(args.seed)
    FLAGS[:] = demo_flags()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="autopot-faults-"))
    base.mkdir(parents=True, exist_ok=True)
    totals = {
        "trials": 0,
        "restarts_first_try_ok": 0,
        "finished_results_lost": 0,
        "duplicate_sp_calc": 0,
        "archive_false_corruption": 0,
    }
    try:
        for i in range(args.trials):
            fault = FAULTS[i % len(FAULTS)]
            point = POINTS[rng.randrange(len(POINTS))]
            delay = rng.uniform(4, 25)
            t0 = time.time()
            r = trial(i, fault, point, delay, base)
            r["seconds"] = round(time.time() - t0, 1)
            log.info("%s", json.dumps(r))
            totals["trials"] += 1
            totals["restarts_first_try_ok"] += int(r.get("restart_rc") == 0)
            totals["finished_results_lost"] += len(r.get("lost", []))
            totals["duplicate_sp_calc"] += int(r.get("duplicate_sp_calc", 0))
            totals["archive_false_corruption"] += int(bool(r.get("archive_damaged")))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
