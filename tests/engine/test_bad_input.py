"""Bad workflow definitions give one clear line and exit 2; nothing is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import autopot


def one_line_error(proc, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_missing_motoko(tmp_path: Path) -> None:
    proc = autopot("orchestrator", "start", "-c", str(tmp_path / "motoko.yaml"))
    one_line_error(proc, "motoko.yaml", "not found")


def test_malformed_motoko(toy: Path) -> None:
    toy.write_text("task_managers: [unclosed\n")
    one_line_error(
        autopot("orchestrator", "start", "-c", str(toy)), "motoko.yaml", "malformed YAML", "line"
    )


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (
            ("workflow.toy.main", "workflow.nope.main"),
            ("orchestrator", "'workflow.nope' not found"),
        ),
        (
            ("workflow.toy.main", "workflow.toy.populate_arg_parser"),
            ("orchestrator", "must be 'async def"),
        ),
        (("work: tasks/work", "work: tasks/missing"), ("task_managers.work", "not found")),
        (
            ("executor: {name: local}", "executor: {name: pbs}"),
            ("executor", "expected an executor name"),
        ),
    ],
    ids=["module-not-found", "not-async", "template-missing", "unknown-executor"],
)
def test_bad_motoko_entries(toy: Path, edit: tuple[str, str], needles: tuple[str, ...]) -> None:
    toy.write_text(toy.read_text().replace(*edit))
    one_line_error(autopot("orchestrator", "start", "-c", str(toy)), *needles)
    assert not (toy.parent / "autopot-workflow" / "runs").exists()


def test_unknown_task_manager_in_orchestrator(toy: Path) -> None:
    orch = toy.parent / "workflow" / "toy.py"
    orch.write_text(
        orch.read_text().replace("workflow.collect.create_tasks", "workflow.colect.create_tasks")
    )
    proc = autopot("orchestrator", "start", "-c", str(toy), "--n", "2")
    assert proc.returncode == 1
    assert "no task manager 'colect'" in proc.stderr


def test_task_raising_fails_its_run_with_cause(toy: Path) -> None:
    doit = toy.parent / "tasks" / "collect" / "doIt.py"
    doit.write_text(
        doit.read_text().replace('ctx.push("total", total)', 'raise ValueError("bad total")')
    )
    proc = autopot("orchestrator", "start", "-c", str(toy), "--n", "2")
    assert proc.returncode == 1
    assert "collect.1 FAILED: ValueError: bad total" in proc.stderr


def test_bad_workflow_flag(toy: Path) -> None:
    proc = autopot("orchestrator", "start", "-c", str(toy), "--n", "two")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "autopot: error: --n: invalid int value: 'two'", proc.stderr
