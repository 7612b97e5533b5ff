"""The grading calculator and MD with selection, on a real trained MTP."""

from pathlib import Path

import numpy as np
import pytest

from autopot.errors import MTPError
from autopot.mtp import get_backend
from autopot.mtp.calculator import GradingMTP, run_md_select
from autopot.store.schema import TaskSchema

from .conftest import ATOM_TYPES, emt_configs

REPO = Path(__file__).resolve().parents[2]


def test_calculator_grades_every_k_calls(trained, training_set):
    calc = GradingMTP(trained, training_set, ATOM_TYPES, grade_every=3)
    a = training_set[0].copy()
    a.calc = calc
    seen = []
    for k in range(6):
        a.positions[0, 0] += 0.01 * (k + 1)
        a.get_forces()
        seen.append("grade" in calc.results)
    assert seen == [True, False, False, True, False, False]
    ref = get_backend().calc_grade(trained, training_set, [a], ATOM_TYPES)[0]
    assert a.calc.get_property("grade", a) == pytest.approx(ref, rel=1e-9)
    efs = get_backend().calc_efs(trained, [a], ATOM_TYPES)[0]
    assert a.get_potential_energy() == pytest.approx(efs.get_potential_energy(), rel=1e-12)


def md_args(**values):
    """tasks/md_select/bd.yaml's md_args and select_args with their defaults, overridden."""
    job = TaskSchema.load(REPO / "tasks" / "md_select").job
    md, sel = job["md_args"].full_default(), job["select_args"].full_default()
    for key, value in values.items():
        (md if key in md else sel)[key] = value
    return {"md": md, "select": sel}


def test_md_stops_at_gamma_max_and_collects_above_gamma_min(trained, training_set):
    start = training_set[3].copy()
    before = start.positions.copy()
    res = run_md_select(
        start,
        trained,
        training_set,
        ATOM_TYPES,
        **md_args(
            temperature_K=1500, steps=300, seed=1, gamma_min=1.5, gamma_max=4.0, grade_every=2
        ),
    )
    assert res.aborted, res.max_grade
    assert res.max_grade > 4.0 and not res.unphysical
    assert 0 < res.step < 300 and res.step % 2 == 0
    assert res.snapshots and all(s.info["MV_grade"] > 1.5 for s in res.snapshots)
    assert res.snapshots[-1].info["MV_grade"] == res.max_grade
    assert [s for s, _ in res.grades] == list(range(0, res.step + 1, 2))
    assert np.array_equal(start.positions, before)  # input untouched


def test_md_stays_when_grades_are_low(trained, training_set):
    res = run_md_select(
        emt_configs(1, seed=40, rattle=0.0)[0],
        trained,
        training_set,
        ATOM_TYPES,
        **md_args(
            temperature_K=50,
            timestep_fs=1.0,
            steps=10,
            seed=2,
            gamma_min=3.0,
            gamma_max=1e6,
            grade_every=5,
        ),
    )
    assert not res.aborted and res.step == 10
    assert len(res.grades) == 3


@pytest.mark.parametrize("ensemble", ["langevin", "npt"])
def test_md_pays_for_a_grade_only_every_grade_every_steps(
    trained, training_set, monkeypatch, ensemble
):
    """grade_every=5: the energy jacobian (the grade) at MD steps 0, 5, 10, ... only, plain
    energies and forces at every step; also under NPT, which computes forces twice a step
    (counting force calls graded 9 times in 20 steps there, and read only 5 of them)."""
    from motep.calculator import MTP

    from autopot.mtp.activeset import ActiveSet

    counts = {"grade": 0, "efs": 0}
    grade_atoms, efs = ActiveSet.grade_atoms, MTP.calculate

    def counting_grade(self, *args, **kwargs):
        counts["grade"] += 1
        return grade_atoms(self, *args, **kwargs)

    def counting_efs(self, *args, **kwargs):
        counts["efs"] += 1
        return efs(self, *args, **kwargs)

    monkeypatch.setattr(ActiveSet, "grade_atoms", counting_grade)
    monkeypatch.setattr(MTP, "calculate", counting_efs)
    res = run_md_select(
        training_set[0],
        trained,
        training_set,
        ATOM_TYPES,
        **md_args(
            ensemble=ensemble,
            temperature_K=100,
            steps=20,
            gamma_min=1e5,
            gamma_max=1e6,
            grade_every=5,
        ),
    )
    assert res.step == 20 and [s for s, _ in res.grades] == [0, 5, 10, 15, 20]
    assert counts["grade"] == 5
    assert counts["efs"] >= 21


def test_md_select_runs_npt_with_a_temperature_ramp(trained, training_set):
    """The same machinery as the MD simulation task: NPT moves the cell, the ramp heats."""
    start = emt_configs(1, seed=41, rattle=0.0)[0]
    res = run_md_select(
        start,
        trained,
        training_set,
        ATOM_TYPES,
        **md_args(
            ensemble="npt",
            temperature_K=10,
            temperature_end_K=800,
            pressure_GPa=5.0,
            steps=40,
            tdamp_fs=20.0,
            pdamp_fs=50.0,
            gamma_min=1e5,
            gamma_max=1e6,
        ),
    )
    assert res.step == 40 and not res.aborted


def test_unphysical_snapshots_never_reach_the_reference(trained, training_set):
    """A snapshot with atoms closer than min_distance_A stops the MD and is not collected."""
    start = training_set[0].copy()
    start.positions[1] = start.positions[0] + [0.6, 0.0, 0.0]  # two atoms 0.6 A apart
    res = run_md_select(
        start,
        trained,
        training_set,
        ATOM_TYPES,
        **md_args(temperature_K=10, steps=5, gamma_min=1.0001, gamma_max=1e9, min_distance_A=1.0),
    )
    assert res.aborted and res.step == 0 and "apart" in res.unphysical
    assert res.snapshots == []
    ok = run_md_select(
        start,
        trained,
        training_set,
        ATOM_TYPES,
        **md_args(temperature_K=10, steps=1, gamma_min=1.0001, gamma_max=1e9, min_distance_A=0.0),
    )
    assert ok.snapshots  # the same configuration is collected when the check is off


def test_bad_md_arguments(trained, training_set):
    with pytest.raises(MTPError, match="gamma_min"):
        run_md_select(
            training_set[0], trained, training_set, ATOM_TYPES, **md_args(gamma_min=5, gamma_max=2)
        )
    with pytest.raises(MTPError, match="grade_every"):
        GradingMTP(trained, training_set, ATOM_TYPES, grade_every=0)
