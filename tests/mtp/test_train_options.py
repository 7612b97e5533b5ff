"""train_args: one table of options, the same meaning on both backends."""

from types import SimpleNamespace

import pytest

from autopot.errors import MTPError
from autopot.mtp.backend import ConvergenceStop, MlpBackend
from autopot.mtp.train_options import TRAIN_OPTIONS, defaults, resolve_train_args

from .conftest import ATOM_TYPES, emt_configs


def test_defaults_and_none_mean_default():
    assert resolve_train_args({}) == defaults()
    assert resolve_train_args({"max_iter": None, "conv_tol": None}) == defaults()
    assert resolve_train_args({"max_iter": 5.0, "method": "l-bfgs-b"})["method"] == "L-BFGS-B"
    names = [o.name for o in TRAIN_OPTIONS]
    for kept in (
        "max_iter",
        "energy_weight",
        "force_weight",
        "stress_weight",
        "seed",
        "method",
        "lls",
        "save_active_set",
        "conv_tol",
    ):
        assert kept in names


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"max_iters": 5}, "unknown training option 'max_iters'"),
        ({"max_iter": -1}, "train_args.max_iter: must be >= 0"),
        ({"max_iter": 2.5}, "train_args.max_iter: expected an integer"),
        ({"force_weight": "a"}, "train_args.force_weight: expected a number"),
        ({"lls": 1}, "train_args.lls: expected true or false"),
        ({"method": "CG"}, "train_args.method: expected one of BFGS, L-BFGS-B"),
        ({"conv_tol": 2.0}, "train_args.conv_tol: must be >= 0.0 and <= 1.0"),
        ({"conv_window": 0}, "train_args.conv_window: must be >= 1"),
    ],
)
def test_bad_values_name_the_key(args, match):
    with pytest.raises(MTPError, match=match):
        resolve_train_args(args)


def test_convergence_stop_is_mlips_rule():
    stop = ConvergenceStop(1e-3, window=3)
    for f in (10.0, 5.0, 4.0, 3.0):
        stop(SimpleNamespace(fun=f))
    with pytest.raises(StopIteration):
        for f in (2.9999, 2.9999, 2.9999):
            stop(SimpleNamespace(fun=f))
    assert stop.converged
    never = ConvergenceStop(0.0, window=1)
    for f in (1.0, 1.0, 1.0):
        never(SimpleNamespace(fun=f))
    assert not never.converged


def test_mlp_train_maps_every_option(tmp_path, monkeypatch):
    binary = tmp_path / "mlp"
    binary.write_text("#!/bin/sh\nexit 3\n")
    binary.chmod(0o755)
    seen = {}

    def run(self, argv, workdir):
        seen["argv"], seen["cwd"] = argv, workdir
        raise MTPError("stop here")

    monkeypatch.setattr(MlpBackend, "run", run)
    be = MlpBackend(str(binary), launcher=["mpirun", "-n", "4"])
    with pytest.raises(MTPError, match="stop here"):
        be.train(
            tmp_path / "u.mtp",
            emt_configs(2, seed=1),
            tmp_path / "o.mtp",
            atom_types=ATOM_TYPES,
            workdir=tmp_path / "new" / "wd",
            max_iter=77,
            conv_tol=1e-4,
            energy_weight=2.0,
            force_weight=0.1,
            stress_weight=0.0,
            lls=False,
            seed=3,
        )
    argv = seen["argv"]
    assert argv[:5] == ["mpirun", "-n", "4", str(binary), "train"]
    assert {
        "--max-iter=77",
        "--bfgs-conv-tol=0.0001",
        "--energy-weight=2.0",
        "--force-weight=0.1",
        "--stress-weight=0.0",
        "--skip-preinit",
    } <= set(argv)
    assert seen["cwd"].is_dir() and (seen["cwd"] / "train.cfg").is_file()
    for option, match in (
        ({"method": "L-BFGS-B"}, "BFGS only"),
        ({"conv_window": 20}, "fixed at 100 iterations, not 20"),
    ):
        with pytest.raises(MTPError, match=match):
            be.train(
                tmp_path / "u.mtp",
                emt_configs(2, seed=1),
                tmp_path / "o.mtp",
                atom_types=ATOM_TYPES,
                **option,
            )
