"""Validation on the converged demo: the stage's Table 2 against the stored runs, the
reference side reused by a second potential, report figures, leaderboard, bundle.

The shared ``finished_demo`` ran the validation stage (it is on by default). Tests that
validate more write into a private copy of its workflow directory (module scope), so the
shared fixture is only read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autopot.errors import AutopotError, DamagedDataError
from autopot.store.workflow_records import WorkflowRecords
from autopot.validation.suite import load_suite

REPO = Path(__file__).resolve().parents[2]


def autopot(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autopot.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=600,
    )


@pytest.fixture(scope="module")
def demo_dir(finished_demo: Path) -> Path:
    return finished_demo.parent / "autopot-workflow"


@pytest.fixture(scope="module")
def stage(demo_dir: Path) -> dict:
    with WorkflowRecords.open(demo_dir) as records:
        return dict(records.summary["validation"])


@pytest.fixture(scope="module")
def copy_dir(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the finished demo's workflow directory (no server runs on it)."""
    dest = tmp_path_factory.mktemp("validation") / "autopot-workflow"
    shutil.copytree(demo_dir, dest, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    return dest


# ------------------------------------------------------------------------------ the suite
def test_suite_errors_name_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "suite.yaml"
    cases = {
        "family: fcc\nproperties: {a0: {from: eos.a0_cubic, tolerance: {relatve: 0.1}}}\n": (
            "properties.a0.tolerance"
        ),
        "family: fcc\nsimulations: {eos: {n_points: 2}}\n": "simulations.eos.n_points",
        "family: fcc\nheldout: {steps: 0}\n": "heldout.steps",
        "family: fcc\nproperties: {x: {from: nosuch.key, tolerance: {relative: 0.1}}}\n": (
            "properties.x.from"
        ),
        "family: fcc\nextra: 1\n": "extra",
    }
    for text, key in cases.items():
        bad.write_text(text)
        with pytest.raises(AutopotError) as info:
            load_suite(bad)
        message = str(info.value)
        assert str(bad) in message and key in message and "\n" not in message, message


def test_user_suite_merges_over_default(tmp_path: Path) -> None:
    user = tmp_path / "mine.yaml"
    user.write_text(
        "family: fcc\nproperties: {sfe: null, B0: {from: eos.B0_GPa, unit: GPa,"
        " tolerance: {relative: 0.05}}}\nsimulations: {eos: {n_points: 9}}\n"
    )
    suite = load_suite(user)
    names = [p.name for p in suite.properties]
    assert "sfe" not in names and "a0" in names
    assert next(p for p in suite.properties if p.name == "B0").relative == 0.05
    assert suite.simulations["eos"] == {"n_points": 9, "max_strain": 0.06}


def test_bad_suite_refused_before_anything_is_written(tmp_path: Path) -> None:
    for name in ("tasks", "workflow"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "motoko.yaml", tmp_path / "motoko.yaml")
    bad = tmp_path / "suite.yaml"
    bad.write_text("family: fcc\nproperties: {a0: {from: eos.a0_cubic, tolerance: 3}}\n")
    proc = autopot(
        "orchestrator",
        "start",
        "--preset",
        "cu-quick",
        "--validation-suite",
        str(bad),
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert str(bad) in line and "properties.a0.tolerance" in line
    assert not (tmp_path / "autopot-workflow" / "db").exists()


# ------------------------------------------------------------------------------ the stage
def test_stage_table_matches_stored_runs(demo_dir: Path, stage: dict, finished_demo: Path) -> None:
    suite = load_suite(family="fcc")
    props = {p.name: p for p in suite.properties}
    assert stage["properties"] == len(suite.properties) == len(stage["rows"])
    with WorkflowRecords.open(demo_dir) as records:
        assert stage["potential"] == records.last_train().label
        for row in stage["rows"]:
            prop = props[row["property"]]
            if prop.simulation == "heldout":
                assert row["value"] == pytest.approx(stage["heldout"][prop.key] * prop.scale)
                continue
            mine = records.run(stage["runs"][prop.simulation])
            ref = records.run(stage["reference_runs"][prop.simulation])
            assert mine.state == ref.state == "FINISHED"
            assert mine.job.params["calculator"]["train_run"] == stage["potential"]
            assert ref.job.params["calculator"] == {"calculator": "emt"}
            assert row["value"] == pytest.approx(mine.quantities[prop.key] * prop.scale)
            assert row["reference"] == pytest.approx(ref.quantities[prop.key] * prop.scale)
            assert row["pass"] == prop.passes(row["value"], row["reference"])
        # physics: two independent simulations of the reference agree on the bulk modulus
        eos = records.run(stage["reference_runs"]["eos"]).quantities
        el = records.run(stage["reference_runs"]["elasticity"]).quantities
        assert (el["C11_GPa"] + 2 * el["C12_GPa"]) / 3 == pytest.approx(eos["B0_GPa"], rel=0.05)
    # held-out: reference MD at the training temperature and above, scored per train run
    heldout = stage["heldout"]
    assert heldout["temperatures_K"] == [300.0, 450.0] and heldout["n_frames"] >= 20
    per_train = heldout["per_train"]
    assert [r["train"] for r in per_train][-1] == stage["potential"]
    assert per_train[-1]["heldout"]["energy_rmse_per_atom"] == pytest.approx(
        heldout["energy_rmse_per_atom"]
    )
    # the first potential (4 configurations) is much worse on the held-out set than the last
    assert per_train[0]["heldout"]["forces_rmse"] > 2 * per_train[-1]["heldout"]["forces_rmse"]
    out = (finished_demo.parent / "demo.log").read_text()
    assert f"converged, {stage['within_tolerance']} of {stage['properties']} properties" in out


def test_second_potential_reuses_every_reference_run(copy_dir: Path, stage: dict) -> None:
    from autopot.validation import validate

    def reference_runs() -> int:
        with WorkflowRecords.open(copy_dir) as records:
            return sum(
                1
                for task in (
                    "opt",
                    "eos",
                    "elasticity",
                    "sfe",
                    "vacancy",
                    "phonon",
                    "md",
                    "neb_from_endpoints",
                )
                for r in records.runs(task, all_workflow_runs=True)
                if r.job.params["calculator"].get("calculator") == "emt"
            )

    before = reference_runs()
    with WorkflowRecords.open(copy_dir) as records:
        trains = [r.label for r in records.runs("train", finished_only=True)]
    second = validate(copy_dir, potential=trains[-2])
    assert second["potential"] == trains[-2] != stage["potential"]
    assert second["reference_total"] == 7  # eos, elasticity, sfe, vacancy, phonon + 2 MD
    assert second["reference_cached"] == second["reference_total"]
    assert reference_runs() == before
    assert second["reference_runs"] == stage["reference_runs"]
    assert not any(v for k, v in second["cached"].items() if k.startswith(trains[-2]))


# ------------------------------------------------------------------------------ report
def test_report_renders_validation_figures(demo_dir: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    from autopot.results.report import build_report

    with WorkflowRecords.open(demo_dir) as records:
        report = build_report(records, tmp_path, html=True, parity=False)
    for name in ("val_eos", "val_phonon", "val_neb", "val_parity", "val_iter"):
        assert name in report.figures, report.skipped
        pixels = imread(report.figures[name])
        assert (
            pixels.std() > 0.05
            and len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 10
        )
    assert [r["property"] for r in report.tables["validation"]][:2] == ["a0", "B0"]
    assert "Validation against the reference" in report.text()
    page = report.html.read_text() if report.html else ""
    assert 'src="data:image/png;base64,' in page
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", page)
    assert "<link" not in page and "url(" not in page


# ------------------------------------------------------------------------------ leaderboard
def test_leaderboard_order_matches_json(copy_dir: Path, tmp_path: Path) -> None:
    with WorkflowRecords.open(copy_dir) as records:
        trains = [r.label for r in records.runs("train", finished_only=True)]
    proc = autopot(
        "benchmark",
        "--models",
        f"{trains[-2]},{trains[-1]},emt",
        "-W",
        str(copy_dir),
        "--store",
        str(copy_dir),
        "-o",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    board = json.loads((tmp_path / "leaderboard.json").read_text())
    assert board["reference_cached"] == board["reference_total"] == 7
    names = [m["name"] for m in board["models"]]
    assert [m["rank"] for m in board["models"]] == [1, 2, 3]
    keys = [(-m["within_tolerance"], m["mean_rel_err"]) for m in board["models"]]
    assert keys == sorted(keys)
    # EMT against itself: the same runs, every property within tolerance, zero error
    emt = next(m for m in board["models"] if m["name"] == "emt")
    assert emt["rank"] == 1 and emt["within_tolerance"] == emt["properties"]
    assert emt["mean_rel_err"] == 0.0
    page = (tmp_path / "leaderboard.html").read_text()
    assert re.findall(r"<tr data-model='([^']+)'>", page) == names
    assert "function sortBy" in page and 'src="data:image/png;base64,' in page
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", page)
    printed = [line.split()[1] for line in proc.stdout.splitlines()]
    assert printed == names


# ------------------------------------------------------------------------------ bundle
def test_bundle_reads_back(copy_dir: Path, tmp_path: Path) -> None:
    from ase.build import bulk
    from ase.io import read

    from autopot.reference.calculators import make_calculator
    from autopot.validation.bundle import read_bundle

    out = tmp_path / "bundle"
    proc = autopot("export", "--bundle", str(out), "-W", str(copy_dir), "--name", "cu-demo")
    assert proc.returncode == 0, proc.stderr
    card = read_bundle(out)
    assert card["name"] == "cu-demo" and card["species"] == "Cu=0"
    assert card["validation"]["properties"] == 12
    frames = read(out / card["training_set"]["path"], index=":")
    assert len(frames) == card["training_set"]["configurations"]
    assert json.loads((out / "data" / "colabfit.json").read_text())
    assert (out / "report" / "report.html").is_file()
    assert (out / "README.md").read_text().startswith("---\nlicense: cc-by-4.0\n")
    calc = make_calculator(
        {"calculator": "mtp", "potential": str(out / card["potential"]), "atom_types": "Cu=0"},
        directory=tmp_path,
    )
    atoms = bulk("Cu", "fcc", a=3.59, cubic=True)
    atoms.calc = calc
    assert -4.0 < atoms.get_potential_energy() / len(atoms) < 4.0
    (out / "model" / "pot.mtp").write_text("changed")
    with pytest.raises(DamagedDataError):
        read_bundle(out)
