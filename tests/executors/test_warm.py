"""Warm start of the local executor: which runs go warm, and that a forked task is
indistinguishable from a cold one (files, exit codes, signals, cancel, a dying server)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from autopot.executors.base import EXIT_FILE, PID_FILE, RunSpec
from autopot.executors.local import LocalExecutor
from autopot.executors.warm import cold_reason, stock_run_sh
from autopot.store.states import State

from .conformance import STOCK_RUN_SH, Recorder

#: a small preload keeps these tests quick; what is not preloaded is imported by the task
PRELOAD = ["json"]


def task(base: Path, name: str, body: str, run_sh: str = STOCK_RUN_SH) -> RunSpec:
    run_dir = base / "runs" / "t" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.sh").write_text(run_sh)
    (run_dir / "doIt.py").write_text(body)
    env = {"AUTOPOT_PYTHON": sys.executable, "AUTOPOT_RUN_DIR": str(run_dir)}
    return RunSpec("t", int(name) if name.isdigit() else 1, f"t.{name}", run_dir, env)


def run(
    scenario: Callable[[LocalExecutor, Recorder], Awaitable[Any]], *, warm: bool = True
) -> tuple[LocalExecutor, Recorder]:
    async def main() -> tuple[LocalExecutor, Recorder]:
        rec = Recorder()
        executor = LocalExecutor(rec, max_parallel=4, warm=warm, preload=PRELOAD)
        await executor.start()
        try:
            await scenario(executor, rec)
        finally:
            await executor.close()
        return executor, rec

    return asyncio.run(main())


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# ---------------------------------------------------------------------- which runs go warm
def test_only_the_stock_run_sh_with_the_same_interpreter_goes_warm(tmp_path: Path) -> None:
    spec = task(tmp_path, "1", "pass\n")
    env = {**os.environ, **spec.env}
    assert stock_run_sh(spec.run_dir)
    assert cold_reason(spec.run_dir, env, dict(os.environ), sys.executable) == ""
    unset = {k: v for k, v in env.items() if k != "AUTOPOT_PYTHON"}
    assert cold_reason(spec.run_dir, unset, dict(os.environ), sys.executable) in (
        "",  # python3 on PATH is this interpreter
        f"AUTOPOT_PYTHON='' is not {sys.executable}",
    )
    other = {**env, "AUTOPOT_PYTHON": "/bin/true"}
    assert "AUTOPOT_PYTHON" in cold_reason(spec.run_dir, other, dict(os.environ), sys.executable)
    path = {**env, "PYTHONPATH": "/somewhere/else"}
    assert "start-up" in cold_reason(spec.run_dir, path, dict(os.environ), sys.executable)
    (spec.run_dir / "run.sh").write_text("#!/bin/sh\nmodule load vasp\n" + STOCK_RUN_SH)
    assert not stock_run_sh(spec.run_dir)
    (spec.run_dir / "run.sh").write_text("# comments\n\n" + STOCK_RUN_SH + "# more\n")
    assert stock_run_sh(spec.run_dir)
    (spec.run_dir / "doIt.py").unlink()
    assert not stock_run_sh(spec.run_dir)


def test_a_customized_run_sh_takes_the_cold_path(tmp_path: Path) -> None:
    custom = task(
        tmp_path,
        "1",
        "import os\nprint(os.environ['LOADED'])\n",
        run_sh='#!/bin/sh\nexport LOADED=vasp/6.4\nexec "${AUTOPOT_PYTHON:-python3}" doIt.py\n',
    )
    stock = task(tmp_path, "2", "print('warm')\n")

    async def scenario(executor: LocalExecutor, rec: Recorder) -> None:
        await executor.submit([custom, stock])
        await rec.until(lambda: rec.final("t.1") and rec.final("t.2"), 60)

    executor, rec = run(scenario)
    assert rec.final("t.1").state == State.FINISHED and rec.final("t.2").state == State.FINISHED
    assert (custom.run_dir / "stdout.log").read_text() == "vasp/6.4\n"
    assert executor.started == {"warm": 1, "cold": 1}


def test_warm_off_starts_everything_cold(tmp_path: Path) -> None:
    spec = task(tmp_path, "1", "print('x')\n")

    async def scenario(executor: LocalExecutor, rec: Recorder) -> None:
        await executor.submit([spec])
        await rec.until(lambda: rec.final("t.1") is not None, 60)

    executor, rec = run(scenario, warm=False)
    assert executor.warm is None and executor.started == {"warm": 0, "cold": 1}


# ---------------------------------------------------------------------- same behaviour
BODIES = {
    "ok": "import sys\nprint('out', sys.argv)\nprint('err', file=sys.stderr)\n",
    "exit3": "import sys\nprint('bad input', file=sys.stderr)\nsys.exit(3)\n",
    "raise": "def f():\n    raise ValueError('boom')\n\nf()\n",
    "message": "import sys\nsys.exit('a message')\n",
    "sigkill": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "unclosed": "fh = open('kept.txt', 'w')\nfh.write('flushed at exit')\n",
    "atexit": "import atexit\natexit.register(lambda: print('bye'))\n",
    "syntax": "def broken(:\n",
    "env": (
        "import json, os, sys\n"
        "json.dump({'env': dict(os.environ), 'argv': sys.argv, 'path0': sys.path[0],\n"
        "           'file': __file__, 'cwd': os.getcwd(), 'name': __name__,\n"
        "           'spec': repr(__spec__), 'stdin': sys.stdin.read()},\n"
        "          open('seen.json', 'w'), sort_keys=True)\n"
    ),
}


def outcome_of(warm: bool, base: Path) -> dict[str, dict[str, Any]]:
    specs = [task(base, str(i), body) for i, body in enumerate(BODIES.values(), start=1)]
    labels = {spec.label: name for spec, name in zip(specs, BODIES, strict=True)}

    async def scenario(executor: LocalExecutor, rec: Recorder) -> None:
        await executor.submit(specs)
        await rec.until(lambda: all(rec.final(label) for label in labels), 60)

    executor, rec = run(scenario, warm=warm)
    assert executor.started["warm" if warm else "cold"] == len(specs)
    out = {}
    for spec in specs:
        final = rec.final(spec.label)
        files = {
            p.name: p.read_text()
            for p in sorted(spec.run_dir.iterdir())
            if p.name not in ("run.sh", "doIt.py", PID_FILE)
        }
        out[labels[spec.label]] = {
            "state": final.state,
            "exit_code": final.exit_code,
            "cause": final.cause,
            "retry": final.retry,
            "files": files,
        }
    return out


def test_a_warm_task_is_indistinguishable_from_a_cold_one(tmp_path: Path) -> None:
    base = tmp_path / "same"
    cold = outcome_of(False, base)
    seen_cold = json.loads(cold["env"]["files"].pop("seen.json"))
    for run_dir in (base / "runs" / "t").iterdir():
        for p in run_dir.iterdir():
            if p.name not in ("run.sh", "doIt.py"):
                p.unlink()
    warm = outcome_of(True, base)
    seen_warm = json.loads(warm["env"]["files"].pop("seen.json"))
    assert warm == cold
    assert seen_warm == seen_cold
    assert cold["sigkill"]["cause"] == "killed by signal SIGKILL" and cold["sigkill"]["retry"]
    assert cold["sigkill"]["files"][EXIT_FILE] == "137\n"
    assert "ValueError: boom" in cold["raise"]["files"]["stderr.log"]
    assert cold["unclosed"]["files"]["kept.txt"] == "flushed at exit"
    assert cold["atexit"]["files"]["stdout.log"] == "bye\n"


# ---------------------------------------------------------------------- cancel, server death
def test_cancel_of_a_warm_run_kills_its_process_group(tmp_path: Path) -> None:
    spec = task(
        tmp_path,
        "1",
        "import subprocess, time\n"
        "child = subprocess.Popen(['sleep', '600'])\n"
        "open('child.pid', 'w').write(str(child.pid))\n"
        "time.sleep(600)\n",
    )

    async def scenario(executor: LocalExecutor, rec: Recorder) -> None:
        await executor.submit([spec])
        await rec.until(lambda: (spec.run_dir / "child.pid").exists(), 60)
        await executor.cancel([spec.label])
        await rec.until(lambda: rec.final(spec.label) is not None, 30)

    executor, rec = run(scenario)
    assert executor.started["warm"] == 1
    assert rec.final(spec.label).state == State.CANCELLED
    wrapper = int((spec.run_dir / PID_FILE).read_text())
    child = int((spec.run_dir / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while not (gone(wrapper) and gone(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(wrapper) and gone(child)


def test_server_killed_mid_run_the_runs_complete_and_it_is_restarted(tmp_path: Path) -> None:
    wait_for_go = (
        "import pathlib, time\n"
        "while not pathlib.Path('go').exists():\n"
        "    time.sleep(0.02)\n"
        "print('done')\n"
    )
    first = [task(tmp_path, str(i), wait_for_go) for i in (1, 2)]
    later = task(tmp_path, "3", "print('after the restart')\n")

    async def scenario(executor: LocalExecutor, rec: Recorder) -> None:
        await executor.submit(first)
        await rec.until(lambda: sum(o.state == State.RUNNING for o in rec.outcomes) == 2, 60)
        assert executor.warm is not None and executor.warm.pid is not None
        os.kill(executor.warm.pid, signal.SIGKILL)
        await rec.until(lambda: executor.warm is not None and executor.warm.pid is None, 10)
        for spec in first:
            (spec.run_dir / "go").touch()
        await rec.until(lambda: all(rec.final(s.label) for s in first), 30)
        await executor.submit([later])
        await rec.until(lambda: rec.final(later.label) is not None, 60)

    executor, rec = run(scenario)
    for spec in [*first, later]:
        final = rec.final(spec.label)
        assert final.state == State.FINISHED and final.exit_code == 0, final
    assert (first[0].run_dir / "stdout.log").read_text() == "done\n"
    assert executor.started == {"warm": 3, "cold": 0}
    assert executor.warm is not None and executor.warm.stats.started == 2
    assert executor.warm.stats.orphaned == 2


def test_a_request_the_dying_server_never_started_runs_once_cold(tmp_path: Path) -> None:
    spec = task(tmp_path, "1", "import os\nopen('started.log', 'a').write(f'{os.getpid()}\\n')\n")

    async def scenario(executor: LocalExecutor, rec: Recorder) -> None:
        warm = executor.warm
        assert warm is not None
        warm.max_restarts = 0  # the next start would be a restart: this one goes cold
        assert await warm._alive() is not None  # started and ready
        os.kill(warm.pid or 0, signal.SIGSTOP)  # it takes the request, never forks it
        await executor.submit([spec])
        zygote = warm._zygote
        assert zygote is not None
        await rec.until(lambda: bool(zygote.pending), 10)
        os.kill(zygote.proc.pid, signal.SIGKILL)
        await rec.until(lambda: rec.final(spec.label) is not None, 60)

    executor, rec = run(scenario)
    assert rec.final(spec.label).state == State.FINISHED
    assert len((spec.run_dir / "started.log").read_text().splitlines()) == 1
    assert executor.started == {"warm": 0, "cold": 1}
    assert executor.warm is not None and executor.warm.stats.relaunched == 1


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_adopt_after_an_orchestrator_crash(tmp_path: Path, warm: bool) -> None:
    """A run outlives its executor (closed without cancel, as in a crash); a new
    executor adopts it by pid file and learns its exit code from the exit file."""
    spec = task(
        tmp_path,
        "1",
        "import pathlib, sys, time\n"
        "while not pathlib.Path('go').exists():\n"
        "    time.sleep(0.02)\n"
        "sys.exit(4)\n",
    )

    async def first(executor: LocalExecutor, rec: Recorder) -> None:
        await executor.submit([spec])
        await rec.until(lambda: (spec.run_dir / PID_FILE).exists(), 60)

    executor, _ = run(first, warm=warm)
    assert executor.started["warm" if warm else "cold"] == 1
    pid = (spec.run_dir / PID_FILE).read_text().strip()

    async def second(executor: LocalExecutor, rec: Recorder) -> None:
        assert await executor.adopt(spec.label, pid, spec.run_dir)
        (spec.run_dir / "go").touch()
        await rec.until(lambda: rec.final(spec.label) is not None, 30)

    _, rec = run(second, warm=warm)
    final = rec.final(spec.label)
    assert final.state == State.FAILED and final.exit_code == 4 and not final.retry


def test_bad_warm_options_name_the_option() -> None:
    from autopot.errors import ExecutorError

    with pytest.raises(ExecutorError) as err:
        LocalExecutor(lambda o: None, warm="yes")  # type: ignore[arg-type]
    assert err.value.field == "executor.warm"
    with pytest.raises(ExecutorError) as err:
        LocalExecutor(lambda o: None, preload="numpy")  # type: ignore[arg-type]
    assert err.value.field == "executor.preload"


def test_the_packed_slurm_group_runner_forks_stock_runs_and_runs_others_cold(
    tmp_path: Path,
) -> None:
    """What a packed SLURM array task runs (without SLURM): each run judged by its files."""
    import subprocess

    specs = [
        task(tmp_path, "1", "print('one')\n"),
        task(tmp_path, "2", "import sys\nprint('bad', file=sys.stderr)\nsys.exit(3)\n"),
        task(tmp_path, "3", "print('cold')\n", run_sh="#!/bin/sh\nexec python3 doIt.py\n"),
        task(tmp_path, "4", "print('not in this group')\n"),
    ]
    listing = tmp_path / "runs.list"
    listing.write_text("".join(f"{s.run_dir}\n" for s in specs))
    proc = subprocess.run(
        [sys.executable, "-m", "autopot.executors.warm", "group", str(listing), "1", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AUTOPOT_PYTHON": sys.executable},
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert "group of 3 run(s): 2 forked from one interpreter, 1 started cold" in proc.stdout
    one, two, three, four = (s.run_dir for s in specs)
    assert (one / EXIT_FILE).read_text() == "0\n" and (one / "stdout.log").read_text() == "one\n"
    assert (two / EXIT_FILE).read_text() == "3\n" and (two / "stderr.log").read_text() == "bad\n"
    assert (three / "stdout.log").read_text() == "cold\n"
    assert not (four / EXIT_FILE).exists()
