"""Selection across the concurrent MDs of an iteration (autopot/activelearning/online_selection).

Two MDs that pick the same configuration cost one reference calculation, a pick from
another region still goes out, and a pick dispatched before a restart is never dropped.
Real motep potential, real EMT reference, the real orchestrator.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from autopot.activelearning.online_selection import (
    CrossMDSelection,
    dispatched_before,
    restart_order,
    write_picks,
)
from autopot.engine.workflow import Workflow
from autopot.mtp import generate_untrained_mtp, get_backend
from autopot.mtp.cfg import read_cfg, write_cfg

from .conftest import start

ATOM_TYPES = "Cu=0"


def cu(seed: int, scale: float = 1.0) -> Atoms:
    """A strained, rattled 32-atom fcc Cu cell labelled by EMT."""
    rng = np.random.default_rng(seed)
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    eps = rng.uniform(-0.02, 0.02, (3, 3))
    a.set_cell(a.cell @ (np.eye(3) + (eps + eps.T) / 2) * scale, scale_atoms=True)
    a.positions += rng.normal(0.0, 0.05, a.positions.shape)
    a.calc = EMT()
    res = {"energy": a.get_potential_energy(), "forces": a.get_forces(), "stress": a.get_stress()}
    a.calc = SinglePointCalculator(a, **res)
    return a


@pytest.fixture(scope="module")
def potential(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A level-06 MTP trained by motep on 8 near-equilibrium cells, and that training set."""
    d = tmp_path_factory.mktemp("cross_md")
    ts = [cu(k) for k in range(8)]
    write_cfg(d / "ts.cfg", ts, ATOM_TYPES)
    generate_untrained_mtp(6, 1, cutoff=5.0, min_dist=2.0, path=d / "06.mtp")
    res = get_backend("motep").train(
        d / "06.mtp", ts, d / "trained.mtp", atom_types=ATOM_TYPES, max_iter=40
    )
    return res.potential, d / "ts.cfg"


def _selection(potential: tuple[Path, Path], *, incremental: bool = True) -> CrossMDSelection:
    sel = CrossMDSelection(*potential, ATOM_TYPES, {"name": "motep"}, gamma_min=2.0)
    sel.incremental = incremental  # False: the backend-agnostic path the mlp backend takes
    return sel


@pytest.mark.parametrize("incremental", [True, False], ids=["motep", "any-backend"])
def test_the_same_pick_from_two_mds_is_dispatched_once(
    potential: tuple[Path, Path], incremental: bool
) -> None:
    compressed, expanded = cu(100, scale=0.95), cu(101, scale=1.05)
    sel = _selection(potential, incremental=incremental)
    first = sel.offer([compressed])
    assert first.dispatched == [0] and first.grades[0] > 2.0
    again = sel.offer([compressed.copy()])  # a second MD picked the same configuration
    assert again.dispatched == [] and again.dropped == 1
    assert again.grades[0] == pytest.approx(1.0, abs=1e-6)
    other = sel.offer([expanded])  # another region: must not be dropped
    assert other.dispatched == [0] and other.grades[0] > 2.0
    # one MD with both a covered and a new pick: only the new one goes out
    both = sel.offer([compressed.copy(), cu(102, scale=0.97)])
    assert both.dispatched == [1] and both.dropped == 1


def test_a_pick_dispatched_before_a_restart_is_never_dropped(
    potential: tuple[Path, Path], tmp_path: Path
) -> None:
    """On restart a pick with a file is dispatched again (its finished sp_calc is reused),
    even when an MD processed earlier this time already covers it."""
    pick = cu(100, scale=0.95)
    sel = _selection(potential)
    assert sel.offer([pick]).dispatched == [0]
    write_picks([pick, cu(103)], [1], tmp_path / "md_select.7", ATOM_TYPES)
    assert dispatched_before(tmp_path / "md_select.7") == [1]
    replay = sel.offer([cu(103), pick.copy()], forced=[1])
    assert replay.forced == [1] and 1 in replay.dispatched
    assert read_cfg(tmp_path / "md_select.7" / "0001.cfg", ATOM_TYPES)[0].positions.shape == (
        32,
        3,
    )


@dataclass
class _Run:
    id: int
    done: bool = True

    @property
    def label(self) -> str:
        return f"md_select.{self.id}"


def test_restart_processes_ended_mds_in_label_order(tmp_path: Path) -> None:
    """Ended MDs: those with dispatched picks first, then the others, each by label."""
    write_picks([cu(1)], [0], tmp_path / "md_select.9", ATOM_TYPES)
    runs = [_Run(12), _Run(9), _Run(3)]

    async def order() -> list[int]:
        return [r.id async for r in restart_order(runs, tmp_path, None)]  # type: ignore[arg-type]

    assert asyncio.run(order()) == [9, 3, 12]


def _md_starts(path: Path) -> Path:
    """Three MD starts: the same compressed cell twice, and an expanded one. Each grades far
    above gamma_max, so its MD stops at step 0 and picks exactly its start."""
    compressed = cu(100, scale=0.95)
    write_cfg(path, [compressed, compressed.copy(), cu(101, scale=1.05)], ATOM_TYPES)
    return path


def _run(motoko: Path, potential: tuple[Path, Path], *extra: str) -> dict:
    pot, ts = potential
    proc = start(
        motoko,
        *("--potential", str(pot), "--training-set", str(ts), "--atom-types", ATOM_TYPES),
        *("--md-select", "--md-configurations", str(_md_starts(motoko.parent / "md.cfg"))),
        *("--gamma-min", "2", "--gamma-max", "5", "--md-steps", "3"),
        *("--max-iterations", "1", "--train-iterations", "5", "--no-validate"),
        *extra,
        timeout=300,
    )
    assert proc.returncode in (0, 4), proc.stdout[-3000:] + proc.stderr[-3000:]
    with Workflow(motoko, read_only=True) as wf:
        summary = wf.summary
        summary["n_sp_calc"] = len(wf.sp_calc.runs)
        summary["n_selected"] = [r.quantities["n_selected"] for r in wf.md_select.runs]
        summary["sp_calc_ids"] = [r.id for r in wf.sp_calc.runs]
        summary["train_ids"] = [r.id for r in wf.train.runs]
    summary["stderr"] = proc.stderr
    return summary


def test_workflow_two_mds_with_the_same_pick_cause_one_reference_calculation(
    autopot_wf: Path, potential: tuple[Path, Path]
) -> None:
    summary = _run(autopot_wf, potential)
    assert summary["n_selected"] == [1, 1, 1]  # every MD picked its start
    assert summary["n_sp_calc"] == 2  # the duplicate was dropped, the other region was not
    (it,) = summary["iterations"]
    assert it["n_added"] == 2
    cross = it["cross_md"]
    assert (cross["picked"], cross["dispatched"], cross["dropped"]) == (3, 2, 1)
    assert cross["grade_s"] >= 0 and summary["settings"]["cross_md_selection"] is True
    assert summary["stderr"].count("cross-MD selection: 1 picked") == 3
    # a restart processes the ended MDs in label order, those with dispatched picks first:
    # the same two sp_calc runs and the same train run come back, nothing is recomputed
    again = _run(autopot_wf, potential)
    assert again["sp_calc_ids"] == summary["sp_calc_ids"]
    assert again["train_ids"] == summary["train_ids"]
    assert again["stderr"].count("(1 before a restart)") == 2
    assert again["iterations"][-1]["cross_md"]["dispatched"] == 2


def test_workflow_without_the_filter_computes_both(
    autopot_wf: Path, potential: tuple[Path, Path]
) -> None:
    summary = _run(autopot_wf, potential, "--no_cross_md_selection")  # the underscore alias
    assert summary["n_selected"] == [1, 1, 1]
    assert summary["n_sp_calc"] == 3
    (it,) = summary["iterations"]
    assert it["n_added"] == 3 and "cross_md" not in it
    assert summary["settings"]["cross_md_selection"] is False
