"""The mlp backend against real MLIP-2 outputs (../shared/data/mlp, README there).

Where no ``mlp`` binary exists, the binary is replaced at the process boundary only, by
``mlp_standin.py`` in replay mode: it writes the recorded outputs for the recorded inputs
(checked by sha256) and option values, and refuses anything else with a non-zero exit.
So the backend's real argument lists, work directories, files and parsers are exercised;
a wrong argument, path or parse fails here.  With a real ``mlp`` on PATH the same calls
also run against it (``needs_mlp``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from autopot.errors import MTPError
from autopot.mtp.backend import MlpBackend, MotepBackend
from autopot.mtp.cfg import read_cfg
from autopot.mtp.error_report import compute_errors, format_mlp_errors, parse_mlp_errors

from . import mlp_standin

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mlp"
pytestmark = pytest.mark.skipif(
    not (DATA / "out" / "pot06.mtp").is_file(),
    reason=f"recorded MLIP-2 outputs not found at {DATA}",
)
T = "Cu=0"
REAL_MLP = shutil.which("mlp")
needs_mlp = pytest.mark.skipif(
    REAL_MLP is None,
    reason="no MLIP-2 'mlp' binary on PATH (MLIP-2 cannot be installed from a package registry)",
)


def _sig(x: float) -> str:
    return f"{x:.6g}"


@pytest.fixture
def standin(tmp_path: Path) -> MlpBackend:
    """The mlp backend with the replaying stand-in as its binary."""
    return MlpBackend(str(mlp_standin.install(tmp_path / "bin")))


# -- D2: MLIP-2's real report titles ---------------------------------------------------
@pytest.mark.parametrize("name", ["train.stdout.txt", "calc-errors.stdout.txt"])
def test_recorded_reports_parse_with_stress(name):
    text = (DATA / "out" / name).read_text()
    err = parse_mlp_errors(text)
    block = text[text.rindex("Stresses (in GPa):") :]
    rmse_gpa = float(block.split("RMS     absolute difference = ")[1].split()[0])
    assert err["stress_rmse"] == rmse_gpa
    for prefix in ("energy", "forces", "stress_ev", "stress"):
        for stat in ("mae", "rmse", "max"):
            assert np.isfinite(err[f"{prefix}_{stat}"]), (prefix, stat)
    for key in (
        "energy_mae_per_atom",
        "energy_rmse_per_atom",
        "energy_max_per_atom",
        "forces_max_rel",
        "forces_rmse_rel",
        "stress_ev_max_rel",
        "stress_rmse_rel",
    ):
        assert key in err
    assert err["stress_count"] == err["energy_count"] and err["forces_count"] > 0


# -- D3: one error definition, MLIP-2's ---------------------------------------------------
def test_errors_reproduce_calc_errors_report_to_print_precision():
    """motep's energies/forces/stresses of out/pot06.mtp on test.cfg give every figure of
    ``mlp calc-errors`` to its 6 printed digits, and the same report text."""
    text = (DATA / "out" / "calc-errors.stdout.txt").read_text()
    recorded = parse_mlp_errors(text)
    ref = read_cfg(DATA / "test.cfg", T)
    ours = compute_errors(ref, MotepBackend(n_jobs=1).calc_efs(DATA / "out" / "pot06.mtp", ref, T))
    figures = [ln for ln in text.splitlines() if " = " in ln]
    assert len(figures) == 21 and len(recorded) == 21 + 3  # + the three counts
    for key, value in recorded.items():
        assert _sig(ours[key]) == _sig(value), key
    block = text[text.index("_________________Errors report") :]
    assert format_mlp_errors(ours) == block


def test_errors_from_recorded_efs_cfg():
    """From mlp's own ``calc-efs`` output: energies to print precision; forces and stresses
    to the rounding of efs.cfg (6 and 5 decimals), 2e-4 relative at most here."""
    recorded = parse_mlp_errors((DATA / "out" / "calc-errors.stdout.txt").read_text())
    ours = compute_errors(read_cfg(DATA / "test.cfg", T), read_cfg(DATA / "out" / "efs.cfg", T))
    for key, value in recorded.items():
        if key.startswith("energy"):
            assert _sig(ours[key]) == _sig(value), key
        else:
            assert ours[key] == pytest.approx(value, rel=2e-4), key


def test_motep_training_reports_mlip2_errors(tmp_path):
    """TrainResult.errors of the motep backend are compute_errors of its own potential."""
    res = MotepBackend(n_jobs=1).train(
        DATA / "untrained_06.mtp",
        DATA / "train.cfg",
        tmp_path / "p.mtp",
        atom_types=T,
        max_iter=5,
        save_active_set=False,
    )
    train = read_cfg(DATA / "train.cfg", T)
    again = compute_errors(train, MotepBackend(n_jobs=1).calc_efs(res.potential, train, T))
    assert res.errors == pytest.approx(again, rel=1e-12)
    assert res.iterations == 5


# -- D1 + the whole call sequence, against the recordings ---------------------------------
def test_train_replays_with_missing_workdir(standin, tmp_path):
    wd = tmp_path / "runs" / "train" / "1" / "train"  # nothing of it exists yet
    res = standin.train(
        DATA / "untrained_06.mtp",
        DATA / "train.cfg",
        tmp_path / "pot.mtp",
        atom_types=T,
        workdir=wd,
        max_iter=200,
    )
    assert (tmp_path / "pot.mtp").read_bytes() == (DATA / "out" / "pot06.mtp").read_bytes()
    assert res.errors == parse_mlp_errors((DATA / "out" / "train.stdout.txt").read_text())
    assert res.errors["stress_rmse"] == 0.00580313 and res.iterations == 200
    assert res.log == wd / "mlp_train.log" and res.log.is_file()
    assert (wd / "train.cfg").read_bytes() == (DATA / "train.cfg").read_bytes()
    assert res.active_set is not None and res.active_set.is_file()


def test_calc_efs_replays_with_missing_workdir(standin, tmp_path):
    wd = tmp_path / "report" / ".parity-work"
    out = standin.calc_efs(DATA / "out" / "pot06.mtp", DATA / "test.cfg", T, workdir=wd)
    rec = read_cfg(DATA / "out" / "efs.cfg", T)
    assert [a.get_potential_energy() for a in out] == [a.get_potential_energy() for a in rec]
    assert (wd / "mlp_calc-efs.log").is_file()


def test_calc_grade_replays_and_matches_motep(standin, tmp_path):
    wd = tmp_path / "a" / "grade"
    pot = DATA / "out" / "pot06.mtp"
    grades = standin.calc_grade(pot, DATA / "train.cfg", DATA / "candidates.cfg", T, workdir=wd)
    rec = np.array([a.info["MV_grade"] for a in read_cfg(DATA / "out" / "grades.cfg", T)])
    assert np.array_equal(grades, rec)
    assert (wd / "state.als").is_file()  # mlp writes it into its cwd
    shutil.copy(pot, tmp_path / "pot06.mtp")  # motep saves no active set in the data folder
    ours = MotepBackend(n_jobs=1).calc_grade(
        tmp_path / "pot06.mtp", DATA / "train.cfg", DATA / "candidates.cfg", T
    )
    assert np.allclose(ours, rec, rtol=1e-6)


@pytest.mark.parametrize(("threshold", "diff"), [(1.1, "diff.cfg"), (10.0, "diff10.cfg")])
def test_select_add_replays_and_matches_motep(standin, tmp_path, threshold, diff):
    wd = tmp_path / "x" / "select"
    pot = DATA / "out" / "pot06.mtp"
    res = standin.select_add(
        pot, DATA / "train.cfg", DATA / "candidates.cfg", T, threshold=threshold, workdir=wd
    )
    assert len(res.indices) == len(read_cfg(DATA / "out" / diff, T)) == 16
    assert (wd / "state.als").is_file() and (wd / "selected.cfg").is_file()
    assert (wd / "grade" / "mlp_calc-grade.log").is_file()
    shutil.copy(pot, tmp_path / "pot06.mtp")
    ours = MotepBackend(n_jobs=1).select_add(
        tmp_path / "pot06.mtp", DATA / "train.cfg", DATA / "candidates.cfg", T, threshold=threshold
    )
    assert res.indices.tolist() == ours.indices.tolist()


def test_every_call_works_without_a_workdir(standin):
    """workdir=None: a fresh scratch directory per call."""
    out = standin.calc_efs(DATA / "out" / "pot06.mtp", DATA / "test.cfg", T)
    assert len(out) == 10


def test_standin_refuses_what_was_not_recorded(standin, tmp_path):
    """The stand-in is strict: other inputs, option values or options fail the call."""
    pot = DATA / "out" / "pot06.mtp"
    with pytest.raises(MTPError, match="mlp calc-grade failed"):
        standin.calc_grade(
            pot, DATA / "test.cfg", DATA / "candidates.cfg", T, workdir=tmp_path / "g"
        )
    with pytest.raises(MTPError, match="mlp train failed"):
        standin.train(
            DATA / "untrained_06.mtp",
            DATA / "train.cfg",
            tmp_path / "p.mtp",
            atom_types=T,
            workdir=tmp_path / "t",
            max_iter=100,
        )
    with pytest.raises(MTPError, match="mlp train failed"):
        standin.train(
            DATA / "untrained_06.mtp",
            DATA / "train.cfg",
            tmp_path / "p.mtp",
            atom_types=T,
            workdir=tmp_path / "t",
            max_iter=200,
            force_weight=0.1,
        )
    argv = standin.command("calc-efs", pot, DATA / "test.cfg", tmp_path / "o.cfg", bogus=1)
    with pytest.raises(MTPError, match="unknown option --bogus"):
        standin.run(argv, tmp_path / "e")
    assert mlp_standin.main(["calc-efs", str(pot), str(DATA / "test.cfg")]) != 0


@needs_mlp
def test_real_mlp_reproduces_the_recordings(tmp_path):
    """With a real binary: the same calls give the recorded grades, selection and EFS."""
    be = MlpBackend(REAL_MLP)
    pot = DATA / "out" / "pot06.mtp"
    grades = be.calc_grade(
        pot, DATA / "train.cfg", DATA / "candidates.cfg", T, workdir=tmp_path / "g" / "new"
    )
    rec = np.array([a.info["MV_grade"] for a in read_cfg(DATA / "out" / "grades.cfg", T)])
    assert np.allclose(grades, rec, rtol=1e-6)
    sel = be.select_add(
        pot, DATA / "train.cfg", DATA / "candidates.cfg", T, workdir=tmp_path / "s" / "new"
    )
    assert len(sel.indices) == 16
    efs = be.calc_efs(pot, DATA / "test.cfg", T, workdir=tmp_path / "e" / "new")
    assert np.allclose(
        [a.get_potential_energy() for a in efs],
        [a.get_potential_energy() for a in read_cfg(DATA / "out" / "efs.cfg", T)],
    )


def test_readme_train_option_table_is_current():
    from autopot.mtp.train_options import markdown_table

    readme = (Path(__file__).resolve().parents[2] / "autopot" / "mtp" / "README.md").read_text()
    assert markdown_table() in readme
