"""bench/paper_scale.py splits wall time among what the runs were doing; the parts must add
up to the wall time and follow the runs' own work spans."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "paper_scale.py"


@pytest.fixture(scope="module")
def paper_scale():
    spec = importlib.util.spec_from_file_location("paper_scale", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parts_add_up_and_follow_the_spans(paper_scale) -> None:
    runs = [
        # 0-10 s: a train, its first second start-up (other), then 9 s of training
        {"started": 0.0, "ended": 10.0, "work_train_spans": [[1.0, 10.0]]},
        # 2-4 s beside it: an sp_calc, 0.5 s start-up, 1.5 s reference
        {"started": 2.0, "ended": 4.0, "work_reference_spans": [[2.5, 4.0]]},
        # never started: ignored
        {"started": None, "ended": None},
    ]
    parts = paper_scale.breakdown(runs, 0.0, 12.0)  # 10-12 s: the orchestrator alone
    assert sum(parts.values()) == pytest.approx(12.0)
    # 0-1 train's start-up alone: 1 s other; 1-2 training alone; 2-2.5 shared with the
    # sp_calc's start-up (0.25 each); 2.5-4 shared with its reference (0.75 each); 4-10
    # training alone; 10-12 orchestrator
    assert parts["train"] == pytest.approx(1 + 0.25 + 0.75 + 6)
    assert parts["reference"] == pytest.approx(0.75)
    assert parts["other"] == pytest.approx(1 + 0.25 + 2)
    assert parts["grade"] == parts["md"] == 0


def test_the_stacking_fault_cell_is_the_papers(paper_scale) -> None:
    """72 atoms, and the fault shifts the periodic image by a*sqrt(3)/4 along [111]."""
    import numpy as np

    a = 3.165
    atoms = paper_scale.bcc_stacking_fault("W", a)
    perfect = paper_scale.bcc_stacking_fault("W", a, (2, 3, 2))
    assert len(atoms) == 72 == len(perfect)
    x_len = atoms.cell.lengths()[0]
    assert x_len == pytest.approx(2 * a * np.sqrt(3) / 2)
    assert atoms.cell[1, 0] == pytest.approx(a * np.sqrt(3) / 4)
    distances = atoms.get_all_distances(mic=True)
    np.fill_diagonal(distances, np.inf)
    # the fault brings atoms closer than in bulk (a*sqrt(3)/2) but not onto each other
    assert 0.6 * a < distances.min() < a * np.sqrt(3) / 2 - 1e-6
