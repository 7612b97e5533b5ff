"""Bad-input audit: the corpus of tests/workflow/bad_inputs.py through the real CLI against
a finished cu-quick workflow (made here, in a temporary directory).

Prints per case what failed the bar, and ends with one JSON line:
{"cases": N, "passed": P, "db_unchanged": U, "tracebacks": T, "seconds": S}
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.workflow.bad_inputs import CASES, make_files, run_case  # noqa: E402

log = logging.getLogger("bench.bad_inputs")


def finished_workflow(dest: Path) -> Path:
    """A private copy of the AutoPot workflow, run to convergence with --preset cu-quick."""
    shutil.copy(REPO / "motoko.yaml", dest / "motoko.yaml")
    for name in ("tasks", "workflow"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autopot.cli",
            "-q",
            "orchestrator",
            "start",
            "-c",
            str(dest / "motoko.yaml"),
            "--preset",
            "cu-quick",
        ],
        cwd=dest,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the demo did not finish: {proc.stderr[-2000:]}")
    return dest / "motoko.yaml"


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="autopot-bad-inputs-") as tmp:
        motoko = finished_workflow(Path(tmp))
        scratch = Path(tmp) / "scratch"
        make_files(scratch)
        t0 = time.perf_counter()
        outcomes = [run_case(case, motoko, scratch) for case in CASES]
        seconds = time.perf_counter() - t0
    for o in outcomes:
        problems = o.problems()
        log.info("%-34s %s", o.case.name, "ok" if not problems else "FAIL: " + "; ".join(problems))
    print(
        json.dumps(
            {
                "cases": len(outcomes),
                "passed": sum(not o.problems() for o in outcomes),
                "db_unchanged": sum(o.db_unchanged for o in outcomes),
                "tracebacks": sum(o.traceback for o in outcomes),
                "seconds": round(seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
