"""MLIP-2 ``mlp`` backend: command construction and output parsing always; real runs only
where an ``mlp`` binary exists."""

import os
import shutil
import stat

import numpy as np
import pytest

from autopot.errors import MTPError
from autopot.mtp import get_backend, write_cfg
from autopot.mtp.backend import (
    MlpBackend,
    backend_from_spec,
    grades_from_cfg,
    indices_from_cfg,
    parse_mlp_errors,
)
from autopot.mtp.cfg import read_cfg

from .conftest import ATOM_TYPES, emt_configs

MLP = shutil.which("mlp")
needs_mlp = pytest.mark.skipif(
    MLP is None,
    reason="no MLIP-2 'mlp' binary on PATH (MLIP-2 cannot be installed from a package registry)",
)

REPORT = """
		* * * TRAIN ERRORS * * *

_________________Errors report_________________
Energy:
	Errors checked for 100 configurations
	Maximal absolute difference = 0.0313393
	Average absolute difference = 0.00918412
	RMS     absolute difference = 0.0115035

Energy per atom:
	Errors checked for 100 configurations
	Maximal absolute difference = 0.000979353
	Average absolute difference = 0.000287004
	RMS     absolute difference = 0.000359484

Forces:
	Errors checked for 3200 atoms
	Maximal absolute difference = 0.0626404
	Average absolute difference = 0.0114316
	RMS     absolute difference = 0.0152339
	Max(ForceDiff) / Max(Force) = 0.0504893
	RMS(ForceDiff) / RMS(Force) = 0.0327788

Stresses (in energy units):
	Errors checked for 100 configurations
	Maximal absolute difference = 0.314
	Average absolute difference = 0.098
	RMS     absolute difference = 0.12

Virial stresses (in pressure units):
	Errors checked for 100 configurations
	Maximal absolute difference = 0.7
	Average absolute difference = 0.2
	RMS     absolute difference = 0.27
_______________________________________________
"""


@pytest.fixture
def fake_binary(tmp_path):
    """An executable file named mlp: enough to build commands; never executed here."""
    path = tmp_path / "bin" / "mlp"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\nexit 3\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_missing_binary_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MTPError, match="'mlp' not found on PATH") as exc:
        get_backend("mlp")
    assert "\n" not in str(exc.value) and "mlp_binary" in str(exc.value)
    with pytest.raises(MTPError, match="check mlp_binary"):
        get_backend("mlp", mlp_binary=str(tmp_path / "nowhere" / "mlp"))


def test_command_is_an_argument_list(fake_binary):
    b = MlpBackend(fake_binary)
    argv = b.command(
        "train",
        "pot.mtp",
        "train.cfg",
        trained_pot_name="out dir/x.mtp",
        max_iter=1000,
        energy_weight=1.0,
        skip_preinit=True,
        quiet=False,
        selection_limit=None,
    )
    assert argv == [
        fake_binary,
        "train",
        "pot.mtp",
        "train.cfg",
        "--trained-pot-name=out dir/x.mtp",
        "--max-iter=1000",
        "--energy-weight=1.0",
        "--skip-preinit",
    ]


def test_failed_run_keeps_log_and_reports(fake_binary, tmp_path):
    b = MlpBackend(fake_binary)
    with pytest.raises(MTPError, match=r"mlp calc-efs failed \(exit 3\)") as exc:
        b.run(b.command("calc-efs", "a", "b", "c"), tmp_path / "wd")
    assert "mlp_calc-efs.log" in str(exc.value)
    assert (tmp_path / "wd" / "mlp_calc-efs.log").exists()


def test_parse_errors_report():
    err = parse_mlp_errors("noise\n" + REPORT)
    assert err["energy_rmse_per_atom"] == 0.000359484
    assert err["energy_mae_per_atom"] == 0.000287004
    assert err["forces_rmse"] == 0.0152339 and err["forces_mae"] == 0.0114316
    assert err["stress_rmse"] == 0.27 and err["stress_mae"] == 0.2  # older title, GPa
    assert err["stress_ev_rmse"] == 0.12
    with pytest.raises(MTPError, match="no 'Errors report'"):
        parse_mlp_errors("BFGS iter 12")


def test_parse_grade_and_select_outputs(tmp_path):
    images = emt_configs(3, seed=50)
    for k, a in enumerate(images):
        a.info["MV_grade"] = 1.5 + k
        a.info["autopot_index"] = [7, 2, 7][k]
    write_cfg(tmp_path / "out.cfg", images, ATOM_TYPES)
    back = read_cfg(tmp_path / "out.cfg", ATOM_TYPES)
    assert np.allclose(grades_from_cfg(back, tmp_path / "out.cfg"), [1.5, 2.5, 3.5])
    assert indices_from_cfg(back, tmp_path / "out.cfg").tolist() == [2, 7]
    del back[0].info["MV_grade"]
    with pytest.raises(MTPError, match="no MV_grade"):
        grades_from_cfg(back, tmp_path / "out.cfg")


@needs_mlp
def test_mlp_and_motep_agree(trained, training_set, tmp_path):
    mlp, motep = get_backend("mlp"), get_backend("motep")
    cands = emt_configs(6, seed=60, rattle=0.15)
    g1 = mlp.calc_grade(trained, training_set, cands, ATOM_TYPES, workdir=tmp_path / "g")
    g2 = motep.calc_grade(trained, training_set, cands, ATOM_TYPES)
    assert np.allclose(g1, g2, rtol=1e-5)
    s1 = mlp.select_add(trained, training_set, cands, ATOM_TYPES, workdir=tmp_path / "s")
    s2 = motep.select_add(trained, training_set, cands, ATOM_TYPES)
    assert s1.indices.tolist() == s2.indices.tolist()
    e1 = mlp.calc_efs(trained, cands, ATOM_TYPES, workdir=tmp_path / "e")
    e2 = motep.calc_efs(trained, cands, ATOM_TYPES)
    assert np.allclose(
        [a.get_potential_energy() for a in e1], [a.get_potential_energy() for a in e2], atol=1e-5
    )
    assert os.path.exists(tmp_path / "g" / "mlp_calc-grade.log")


def test_launcher_prefixes_train_only_and_no_shell_strings(fake_binary):
    """``mpirun -n N mlp train``: MLIP-2 trains in parallel; its other commands are serial
    (calc-efs under MPI writes one output per rank)."""
    b = backend_from_spec({"name": "mlp", "binary": fake_binary, "launcher": ["mpirun", "-n", "2"]})
    assert b.command("train", "p.mtp", "t.cfg")[:5] == ["mpirun", "-n", "2", fake_binary, "train"]
    assert b.command("calc-efs", "p.mtp", "in.cfg", "out.cfg") == [
        fake_binary,
        "calc-efs",
        "p.mtp",
        "in.cfg",
        "out.cfg",
    ]
    with pytest.raises(MTPError, match="not a shell string"):
        MlpBackend(fake_binary, launcher="mpirun -n 2")
