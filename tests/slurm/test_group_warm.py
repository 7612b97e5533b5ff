"""Packed array tasks (``group_size``) import once and fork each stock-run.sh run; the
runs end exactly as they do when the group runs cold (one shell wrapper per run)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from autopot.executors.base import EXIT_FILE, RunSpec

from .conftest import Harness

pytestmark = pytest.mark.slurm

STOCK_RUN_SH = '#!/bin/sh\nexec "${AUTOPOT_PYTHON:-python3}" doIt.py\n'
BODIES = {
    "ok": "import os, sys\nprint('ok', sys.argv, os.environ['AUTOPOT_RUN_DIR'] == os.getcwd())\n",
    "fail": "import sys\nprint('bad input', file=sys.stderr)\nsys.exit(3)\n",
    "sigkill": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "stdin": "import sys\nprint(repr(sys.stdin.read()))\n",  # never the run list
    "custom": "print('cold in its group')\n",
}


def make(base: Path) -> list[RunSpec]:
    specs = []
    for i, (name, body) in enumerate(BODIES.items(), start=1):
        run_dir = base / "runs" / "sp_calc" / str(i)
        run_dir.mkdir(parents=True)
        run_sh = STOCK_RUN_SH if name != "custom" else "#!/bin/sh\nexec python3 doIt.py\n"
        (run_dir / "run.sh").write_text(run_sh)
        (run_dir / "doIt.py").write_text(body)
        env = {"AUTOPOT_PYTHON": sys.executable}
        specs.append(RunSpec("sp_calc", i, f"sp_calc.{i}", run_dir, env))
    return specs


def group(base: Path, warm: bool) -> tuple[dict[str, Any], str]:
    specs = make(base)

    async def scenario() -> dict[str, Any]:
        h = Harness(group_size=len(specs), warm=warm)
        ids = await h.executor.submit(specs)
        assert len({i for i in ids}) == 1  # one array task holds them all
        await h.wait_final([s.label for s in specs], timeout=120)
        await h.executor.close()
        out = {}
        for spec, name in zip(specs, BODIES, strict=True):
            final = h.final(spec.label)
            assert final is not None
            out[name] = {
                "state": final.state,
                "exit_code": final.exit_code,
                "retry": final.retry,
                "cause": final.cause.split(": ", 1)[-1],  # without the job id
                "files": {
                    f: (spec.run_dir / f).read_text()
                    for f in (EXIT_FILE, "stdout.log", "stderr.log")
                    if (spec.run_dir / f).exists()
                },
            }
        return out

    outcomes = asyncio.run(scenario())
    logs = "".join(p.read_text() for p in base.glob("runs/sp_calc/.slurm/*/slurm-*.out"))
    return outcomes, logs


def test_a_packed_group_forks_its_runs_and_they_end_as_cold_ones(
    slurm: None, tmp_path: Path
) -> None:
    warm, warm_log = group(tmp_path / "warm", warm=True)
    cold, cold_log = group(tmp_path / "cold", warm=False)
    assert "group of 5 run(s): 4 forked from one interpreter, 1 started cold" in warm_log
    assert "forked" not in cold_log
    assert warm == cold
    assert warm["ok"]["state"] == "FINISHED" and warm["ok"]["files"]["stdout.log"] == (
        "ok ['doIt.py'] True\n"
    )
    assert warm["fail"]["exit_code"] == 3 and "bad input" in warm["fail"]["cause"]
    assert warm["sigkill"]["files"][EXIT_FILE] == "137\n" and warm["sigkill"]["retry"]
    assert warm["stdin"]["files"]["stdout.log"] == "''\n"
    assert warm["custom"]["files"]["stdout.log"] == "cold in its group\n"
