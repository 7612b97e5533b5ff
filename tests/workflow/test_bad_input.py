"""Bad workflow input fails before anything is submitted, with a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from .bad_inputs import CU_CFG as Cu_CFG
from .conftest import start


def no_runs(motoko: Path) -> bool:
    runs = motoko.parent / "autopot-workflow" / "runs"
    return not runs.exists() or not any(runs.iterdir())


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (
            [
                "--select",
                "-a",
                "Cu=0",
                "--training_set",
                "ts.cfg",
                "--grades",
                "10",
                "2",
                "--training_candidate_set",
                "missing.cfg",
            ],
            "missing.cfg: --training-candidate-set: file not found",
        ),
        (
            [
                "--select",
                "-a",
                "Cu=0",
                "--training_set",
                "ts.cfg",
                "--grades",
                "2",
                "10",
                "--training_candidate_set",
                "ts.cfg",
            ],
            "--grades: must be strictly decreasing",
        ),
        (
            [
                "--select",
                "-a",
                "Cu=1",
                "--training_set",
                "ts.cfg",
                "--grades",
                "10",
                "--training_candidate_set",
                "ts.cfg",
            ],
            "ts.cfg: line 1: type 0 used",
        ),
        (
            [
                "--calculate_ts",
                "-a",
                "Cu=0",
                "--training_set",
                "ts.cfg",
                "--calculator",
                "vasp",
                "--pot_fname",
                "INCAR",
            ],
            "INCAR: --pot-fname: file not found",
        ),
        (
            [
                "--calculate_ts",
                "-a",
                "Cu=0",
                "--training_set",
                "ts.cfg",
                "--calculator",
                "ase.calculators.nope:X",
            ],
            "calculator.calculator: cannot import calculator",
        ),
    ],
    ids=[
        "candidates-missing",
        "grades-not-decreasing",
        "atom-types-mismatch",
        "incar-missing",
        "bad-calculator",
    ],
)
def test_bad_input_fails_before_submission(autopot_wf: Path, args: list[str], expect: str) -> None:
    (autopot_wf.parent / "ts.cfg").write_text(Cu_CFG)
    proc = start(autopot_wf, *args, timeout=120)
    assert proc.returncode != 0
    assert expect in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert no_runs(autopot_wf)
