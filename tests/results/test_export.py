"""``autopot export`` and ``final_potential`` on a finished demo workflow: what a user takes
to another code must be what the database holds."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
from ase.io import read

from autopot.mtp.cfg import read_cfg
from autopot.results import final_potential
from autopot.results.source import open_records

from .conftest import autopot


def wf_dir(motoko: Path) -> Path:
    return motoko.parent / "autopot-workflow"


def database_view(motoko: Path) -> dict:
    """What the database says: sp_calc results, train runs and their inputs."""
    with open_records(wf_dir(motoko)) as records:
        sp = {
            r.label: {
                k: np.asarray(v) if k in ("forces", "stress") else v
                for k, v in r.quantities.items()
            }
            for r in records.runs("sp_calc")
        }
        trains = [
            {
                "label": r.label,
                "ids": list(r.job.params["sp_calc_ids"]),
                "ts_size": r.quantities["ts_size"],
                "stage": r.job.params["context"]["stage"],
            }
            for r in records.runs("train")
        ]
        last_dir = records.run_dir(records.last_train())
    return {"sp": sp, "trains": trains, "last_dir": last_dir}


def test_extxyz_round_trip_matches_the_database(finished_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "ts.xyz"
    proc = autopot("export", "-W", str(finished_demo), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    db = database_view(finished_demo)
    images = read(out, ":")
    last = db["trains"][-1]
    assert len(images) == last["ts_size"] == len(read_cfg(db["last_dir"] / "ts.cfg", "Cu=0"))
    assert f"exported {len(images)} of {len(images)}" in proc.stderr

    added_by = {f"sp_calc.{i}": t["label"] for t in db["trains"] for i in t["ids"]}
    seen = set()
    for atoms in images:
        label = atoms.info["autopot_sp_calc"]
        seen.add(label)
        q = db["sp"][label]
        assert atoms.get_potential_energy() == q["energy"]  # written in full precision
        np.testing.assert_allclose(atoms.get_forces(), q["forces"], atol=1e-7)  # extxyz: 8 decimals
        np.testing.assert_allclose(
            atoms.get_stress(voigt=True), q["stress"], rtol=1e-12, atol=1e-14
        )
        assert atoms.info["autopot_added_by"] == added_by[label]
        origin = atoms.info["autopot_origin"]
        assert origin == "calculate_ts" or origin.split(".")[0] in ("select", "md_select")
        if origin.startswith("md_select"):  # collected above gamma_min (2 in the preset)
            assert atoms.info["MV_grade"] > 2.0, (origin, label, atoms.info)
        elif origin != "calculate_ts":  # its grade before selection, as in the training file;
            # select-add (as MLIP-2's) may swap in a candidate whose grade was just below 1
            # until earlier swaps raised it, so only "graded" holds for every pick
            assert atoms.info["MV_grade"] > 0.0, (origin, label, atoms.info)
    assert seen == set(added_by)  # every configuration of every iteration, each once

    # the same structures, in the same order, as the training file the potential was fitted on
    ts = read_cfg(db["last_dir"] / "ts.cfg", "Cu=0")
    for a, b in zip(images, ts, strict=True):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-7)
        assert abs(a.get_potential_energy() - b.get_potential_energy()) < 1e-9


def test_cfg_export_and_filters(finished_demo: Path, tmp_path: Path) -> None:
    db = database_view(finished_demo)
    out = tmp_path / "ts.cfg"
    assert (
        autopot("export", "-W", str(finished_demo), "--format", "cfg", "-o", str(out)).returncode
        == 0
    )
    images = read_cfg(out, "Cu=0")
    assert len(images) == db["trains"][-1]["ts_size"]
    assert all(a.info["autopot_sp_calc"] in db["sp"] for a in images)

    full = read(_export(finished_demo, tmp_path / "all.xyz"), ":")
    grades = [a.info.get("MV_grade") for a in full]
    sub = read(
        _export(finished_demo, tmp_path / "g.xyz", "--min-grade", "2", "--max-grade", "100"), ":"
    )
    assert len(sub) == sum(1 for g in grades if g is not None and 2 <= g <= 100) > 0
    assert all(2 <= a.info["MV_grade"] <= 100 for a in sub)

    md = read(_export(finished_demo, tmp_path / "md.xyz", "--task", "md_select"), ":")
    assert len(md) == sum(1 for a in full if a.info["autopot_origin"].startswith("md_select."))
    assert {a.info["autopot_stage"] for a in md} == {"md_select"}

    it1 = read(
        _export(finished_demo, tmp_path / "it.xyz", "--stage", "md_select", "--iteration", "1"), ":"
    )
    md1 = [t for t in db["trains"] if t["stage"] == "md_select"][0]
    assert sorted(a.info["autopot_sp_calc"] for a in it1) == sorted(
        f"sp_calc.{i}" for i in md1["ids"]
    )

    # an earlier train run's training set is a prefix of the last one
    first = db["trains"][0]
    early = read(_export(finished_demo, tmp_path / "t1.xyz", "--train", first["label"]), ":")
    assert [a.info["autopot_sp_calc"] for a in early] == [a.info["autopot_sp_calc"] for a in full][
        : len(early)
    ]
    assert len(early) == first["ts_size"]


def _export(motoko: Path, out: Path, *args: str) -> Path:
    proc = autopot("export", "-W", str(motoko), "-o", str(out), *args)
    assert proc.returncode == 0, proc.stderr
    return out


def test_sp_calc_query_export_to_stdout(finished_demo: Path) -> None:
    proc = autopot(
        "export", "-W", str(finished_demo), "--sp-calc", "--where", "energy_per_atom > 0.02"
    )
    assert proc.returncode == 0, proc.stderr
    images = read(io.StringIO(proc.stdout), ":", format="extxyz")
    runs = autopot(
        "runs",
        "sp_calc",
        "-W",
        str(finished_demo),
        "--where",
        "energy_per_atom > 0.02",
        "--format",
        "json",
    )
    expected = {r["id"]: r["q.energy"] for r in json.loads(runs.stdout)}
    assert {a.info["autopot_sp_calc"]: a.get_potential_energy() for a in images} == expected
    assert all(a.get_potential_energy() / len(a) > 0.02 for a in images)


def test_colabfit_layout(finished_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "colabfit"
    proc = autopot(
        "export",
        "-W",
        str(finished_demo),
        "--format",
        "colabfit",
        "-o",
        str(out),
        "--name",
        "Cu_EMT_autopot",
        "--author",
        "A. Tester",
        "--link",
        "https://doi.org/10.0/x",
    )
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / "colabfit.json").read_text())
    images = read(out / meta["configuration_file"], ":")
    assert meta["name"] == "Cu_EMT_autopot" and meta["authors"] == ["A. Tester"]
    assert (
        meta["n_configurations"]
        == len(images)
        == database_view(finished_demo)["trains"][-1]["ts_size"]
    )
    assert meta["elements"] == ["Cu"]
    pmap = meta["property_map"]
    assert set(pmap) == {"energy", "atomic-forces", "cauchy-stress"}
    assert pmap["energy"][0]["energy"] == {"field": "energy", "units": "eV"}
    assert pmap["atomic-forces"][0]["_metadata"]["method"]["value"] == "EMT"
    assert meta["provenance"]["autopot_version"] and meta["provenance"]["workflow_run"] == "default"
    assert all(a.info["name"].startswith("default/sp_calc.") for a in images)
    assert (out / "README.md").read_text().startswith("# Cu_EMT_autopot")
    # a non-empty directory is not overwritten
    proc = autopot("export", "-W", str(finished_demo), "--format", "colabfit", "-o", str(out))
    assert proc.returncode == 2 and "not empty" in proc.stderr


def test_export_bad_input_is_one_line(finished_demo: Path, tmp_path: Path) -> None:
    cases = [
        (["--train", "train.999"], "train.999"),
        (["--train", "sp_calc.1"], "not a train run"),
        (["--min-grade", "1e9", "-o", str(tmp_path / "none.xyz")], "no configuration matched"),
        (["--sp-calc", "--where", "enrgy < 0"], "enrgy"),
        (["--run-name", "nope"], "no workflow run 'nope'"),
    ]
    for args, expected in cases:
        proc = autopot("export", "-W", str(finished_demo), *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert expected in proc.stderr, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "none.xyz").exists()
    proc = autopot("export", "-W", str(finished_demo), "--format", "colabfit")
    assert proc.returncode == 2 and "-o DIR" in proc.stderr


def test_final_potential_in_one_call(finished_demo: Path) -> None:
    pot, ts, train, errors = final_potential(finished_demo)
    db = database_view(finished_demo)
    assert train == db["trains"][-1]["label"]
    assert pot == db["last_dir"] / "pot.mtp" and pot.is_file()
    assert len(read_cfg(ts, "Cu=0")) == db["trains"][-1]["ts_size"]
    assert errors["energy_rmse_per_atom"] < 0.01


def test_archived_demo_restores_exports_and_guards_its_records(
    finished_demo: Path, tmp_path: Path
) -> None:
    """The archive of a real workflow: export in the new place equals the original's; a
    potential swapped together with its manifest entry is caught by the database record."""
    out = tmp_path / "demo.tar.gz"
    assert autopot("archive", str(out), "-W", str(finished_demo)).returncode == 0
    verify = autopot("archive", "--verify", str(out))
    assert verify.returncode == 0 and " 0 recorded outputs" not in verify.stdout, (
        verify.stdout + verify.stderr
    )
    assert autopot("archive", "--extract", str(tmp_path / "x"), str(out)).returncode == 0
    restored = tmp_path / "x" / "autopot-workflow"
    a = _export(finished_demo, tmp_path / "a.xyz").read_text()
    b = _export(restored, tmp_path / "b.xyz").read_text()
    assert a == b
    assert final_potential(restored).potential == restored / final_potential(
        finished_demo
    ).potential.relative_to(wf_dir(finished_demo))
    report = autopot("report", "-W", str(restored), "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert "skipped" not in report.stdout and (tmp_path / "report" / "parity.png").is_file()

    # swap the last potential and rewrite the manifest to match: only the database can tell
    import hashlib

    forged = tmp_path / "forged.tar.gz"
    with tarfile.open(out, "r:gz") as tin:
        members = [(m, tin.extractfile(m).read() if m.isfile() else None) for m in tin]
    last = final_potential(finished_demo).potential.relative_to(wf_dir(finished_demo)).as_posix()
    fake = b"MTP\nversion = 1.1.0\n"
    with tarfile.open(forged, "w:gz") as tout:
        for m, data in members:
            rel = m.name.split("/", 1)[1]
            if rel == last:
                data = fake
            elif rel == "MANIFEST.json":
                manifest = json.loads(data)
                manifest["files"][last] = {
                    "sha256": hashlib.sha256(fake).hexdigest(),
                    "size": len(fake),
                }
                data = json.dumps(manifest).encode()
            m.size = len(data) if data is not None else 0
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
    proc = autopot("archive", "--verify", str(forged))
    assert proc.returncode == 6  # damaged data
    assert last in proc.stderr and "differs from what the database recorded" in proc.stderr
