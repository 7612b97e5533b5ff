"""Exit codes of the AutoPot workflow: 0 converged (the shared demo), 4 finished without
converging."""

from __future__ import annotations

from pathlib import Path

from autopot.engine.workflow import Workflow
from autopot.errors import ExitCode

from .conftest import start


def test_exit_0_converged(finished_demo: Path) -> None:
    err = (finished_demo.parent / "demo.err").read_text().splitlines()
    assert "converged" in err[-1] and err[-1].endswith("(exit 0)"), err[-3:]


def test_exit_4_not_converged(autopot_wf: Path) -> None:
    """One MD iteration is not enough for cu-quick: a full run that says so, not "finished"."""
    proc = start(autopot_wf, "--preset", "cu-quick", "--max-iterations", "1", timeout=900)
    assert proc.returncode == ExitCode.NOT_CONVERGED == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "finished without converging" in last and "(exit 4)" in last, last
    assert "NOT converged" in proc.stdout
    with Workflow(autopot_wf, read_only=True) as wf:
        assert wf.workflow_record().state == "NOT_CONVERGED" and wf.summary["converged"] is False
