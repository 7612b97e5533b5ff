"""The motep backend on real EMT data: training, grades, selection, errors."""

import numpy as np
import pytest

from autopot.errors import MTPError
from autopot.mtp import get_backend, read_cfg, write_cfg
from autopot.mtp.activeset import ActiveSet
from autopot.mtp.mtpfile import activeset_path

from .conftest import ATOM_TYPES, emt_configs

TOL = 1e-6


def test_train_reports_errors_and_saves_active_set(trained, training_set):
    assert trained.exists() and activeset_path(trained).exists()
    als = ActiveSet.load(activeset_path(trained))
    assert als.n_training == len(training_set) and als.mode == "configuration"
    pred = get_backend().calc_efs(trained, emt_configs(4, seed=9), ATOM_TYPES)
    ref = emt_configs(4, seed=9)
    err = np.mean(
        [
            abs(p.get_potential_energy() - r.get_potential_energy()) / len(r)
            for p, r in zip(pred, ref, strict=True)
        ]
    )
    assert err < 0.01  # eV/atom on held-out data; a level-06 fit of EMT Cu


def test_train_errors_keys(tmp_path, training_set):
    from autopot.mtp import generate_untrained_mtp

    generate_untrained_mtp(6, 1, path=tmp_path / "u.mtp")
    res = get_backend().train(
        tmp_path / "u.mtp",
        training_set[:8],
        tmp_path / "t.mtp",
        atom_types="Cu=0",
        max_iter=5,
        save_active_set=False,
    )
    for key in (
        "energy_rmse_per_atom",
        "energy_mae_per_atom",
        "forces_rmse",
        "forces_mae",
        "stress_rmse",
        "stress_mae",
    ):
        assert np.isfinite(res.errors[key]), key
    assert res.n_configs == 8 and res.wall_seconds > 0 and res.active_set is None


def test_training_configurations_grade_at_most_one(trained, training_set):
    grades = get_backend().calc_grade(trained, training_set, training_set, ATOM_TYPES)
    assert grades.shape == (len(training_set),)
    assert grades.max() <= 1 + TOL
    assert grades.max() > 0.5  # the active set rows themselves grade exactly 1


def test_cfg_paths_work_like_lists(trained, training_set, tmp_path):
    write_cfg(tmp_path / "ts.cfg", training_set, ATOM_TYPES)
    a = get_backend().calc_grade(trained, tmp_path / "ts.cfg", tmp_path / "ts.cfg", "Cu=0")
    b = get_backend().calc_grade(
        trained, training_set, read_cfg(tmp_path / "ts.cfg", "Cu=0"), ATOM_TYPES
    )
    assert np.allclose(a, b)


def test_strained_and_perturbed_configurations_extrapolate(trained, training_set):
    strained = emt_configs(3, seed=11, strain=0.0, scale=1.10)
    perturbed = emt_configs(3, seed=12, rattle=0.2)
    grades = get_backend().calc_grade(trained, training_set, strained + perturbed, ATOM_TYPES)
    assert grades.min() > 2, grades


def test_neighborhood_mode(trained, training_set):
    b = get_backend("motep", mode="neighborhood")
    g_train = b.calc_grade(trained, training_set, training_set[:5], ATOM_TYPES)
    g_far = b.calc_grade(trained, training_set, emt_configs(2, seed=13, rattle=0.25), ATOM_TYPES)
    assert g_train.max() <= 1 + TOL
    assert g_far.min() > 2


def test_select_add_picks_one_of_identical_copies(trained, training_set):
    (c,) = emt_configs(1, seed=21, rattle=0.2)
    res = get_backend().select_add(
        trained, training_set, [c.copy() for _ in range(20)], ATOM_TYPES, threshold=2.0
    )
    assert len(res.indices) == 1
    assert res.grades.shape == (20,) and res.grades.min() > 2
    assert len(res.selected) == 1


def test_select_add_nothing_below_threshold_and_limit(trained, training_set):
    b = get_backend()
    res = b.select_add(trained, training_set, training_set[:6], ATOM_TYPES, threshold=1.1)
    assert len(res.indices) == 0
    far = emt_configs(8, seed=22, rattle=0.2)
    capped = b.select_add(trained, training_set, far, ATOM_TYPES, threshold=1.1, limit=2)
    assert 1 <= len(capped.indices) <= 2
    full = b.select_add(trained, training_set, far, ATOM_TYPES, threshold=1.1)
    assert len(full.indices) >= len(capped.indices)
    # after adding the selection, the rest of the candidates no longer extrapolate much
    grades_after = b.calc_grade(trained, training_set + full.selected, far, ATOM_TYPES)
    assert grades_after.max() <= 1 + TOL


def test_species_mismatch_and_unmapped_element(trained, training_set, tmp_path):
    b = get_backend()
    gold = emt_configs(1, seed=30)
    gold[0].numbers[0] = 79
    with pytest.raises(MTPError, match="contains Au, which atom_types Cu=0 does not map"):
        b.calc_grade(trained, training_set, gold, ATOM_TYPES)
    with pytest.raises(MTPError, match="species_count = 1") as exc:
        b.calc_grade(trained, training_set, gold, "Cu=0,Au=1")
    assert "\n" not in str(exc.value)


def test_bad_training_set_writes_nothing(tmp_path, training_set):
    from autopot.mtp import generate_untrained_mtp

    generate_untrained_mtp(6, 1, path=tmp_path / "u.mtp")
    (tmp_path / "ts.cfg").write_text("BEGIN_CFG\n Size\n 1\n Energy\n x\nEND_CFG\n")
    with pytest.raises(MTPError, match=r"ts.cfg: line 5"):
        get_backend().train(
            tmp_path / "u.mtp", tmp_path / "ts.cfg", tmp_path / "out.mtp", atom_types="Cu=0"
        )
    nolabel = [a.copy() for a in training_set[:2]]
    with pytest.raises(MTPError, match="no energy"):
        get_backend().train(tmp_path / "u.mtp", nolabel, tmp_path / "out.mtp", atom_types="Cu=0")
    assert not (tmp_path / "out.mtp").exists()
    assert not activeset_path(tmp_path / "out.mtp").exists()


def test_untrained_potential_cannot_grade(tmp_path, training_set):
    from autopot.mtp import generate_untrained_mtp

    generate_untrained_mtp(6, 1, path=tmp_path / "u.mtp")
    with pytest.raises(MTPError, match="untrained"):
        get_backend().calc_grade(tmp_path / "u.mtp", training_set, training_set, "Cu=0")


def test_unknown_backend():
    with pytest.raises(MTPError, match="unknown MTP backend"):
        get_backend("lammps")


def test_neighborhood_select_add_and_saved_active_set(trained, training_set, tmp_path):
    from autopot.mtp.mtpfile import load_active_set, save_active_set

    b = get_backend("motep", mode="neighborhood")
    (c,) = emt_configs(1, seed=23, rattle=0.2)
    res = b.select_add(trained, training_set, [c.copy() for _ in range(5)], ATOM_TYPES)
    assert len(res.indices) == 1 and res.grades.min() > 2
    als = load_active_set(trained)
    assert als is not None and als.mode == "configuration"
    copy = tmp_path / "copy.mtp"
    copy.write_bytes(trained.read_bytes())
    assert load_active_set(copy) is None
    save_active_set(copy, als)
    assert load_active_set(copy).n_training == als.n_training


def test_a_warm_refit_that_stopped_improving_ends_one_window_later(tmp_path, trained, training_set):
    """conv_window: a refit from a converged potential on its own data stops after about
    one window, not at max_iter; the loss history is in train_errors.json."""
    import json

    common = dict(atom_types="Cu=0", max_iter=400, conv_tol=1e-2, save_active_set=False)
    short = get_backend().train(
        trained, training_set, tmp_path / "s.mtp", workdir=tmp_path / "s", conv_window=5, **common
    )
    steps = json.loads((tmp_path / "s" / "train_errors.json").read_text())["steps"]
    assert steps[-1]["converged"] and short.iterations is not None and short.iterations < 60
    assert len(steps[-1]["loss_history"]) == short.iterations
    long = get_backend().train(trained, training_set, tmp_path / "l.mtp", conv_window=100, **common)
    assert long.iterations is not None and long.iterations > 100
