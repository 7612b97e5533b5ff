"""The bad-input corpus (tests/workflow/bad_inputs.py) through the real CLI against a
finished workflow: one line naming the file/field, the documented exit code, no
traceback, the database byte-identical, the workflow still FINISHED."""

from __future__ import annotations

from pathlib import Path

import pytest

from autopot.engine.workflow import Workflow

from .bad_inputs import CASES, make_files, run_case


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bad_inputs")
    make_files(path)
    return path


def test_corpus_is_large_and_distinct() -> None:
    names = [c.name for c in CASES]
    assert len(CASES) >= 40 and len(set(names)) == len(names)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_refused_and_nothing_changed(finished_demo: Path, scratch: Path, case) -> None:
    outcome = run_case(case, finished_demo, scratch)
    assert not outcome.problems(), (
        f"{outcome.problems()}\nstderr: {outcome.stderr}\nstdout: {outcome.stdout[-500:]}"
    )


def test_bad_rerun_leaves_the_finished_workflow_finished(
    finished_demo: Path, scratch: Path
) -> None:
    for name in (
        "grades-not-a-number",
        "md-args-typo",
        "training-set-empty",
        "candidates-whitespace-only",
        "md-configurations-empty",
        "poscar-as-training-set",
    ):
        (case,) = [c for c in CASES if c.name == name]
        assert not run_case(case, finished_demo, scratch).problems(), name
    with Workflow(finished_demo, read_only=True) as wf:
        record = wf.workflow_record()
        assert record.state == "FINISHED" and wf.summary["converged"] is True
