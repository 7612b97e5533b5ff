"""Simulations as recorded task runs: identity, cache, refresh, composition, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ase.build import bulk

from autopot.errors import AutopotError
from autopot.simulate import EOS, MD, NEB_FROM_ENDPOINTS, OPT, SimulationError, tasks
from autopot.store.database import open_store
from autopot.store.outcome import OUTCOME_FILE


@pytest.fixture
def cu():
    return bulk("Cu", "fcc", a=3.6, cubic=True)


def counts(wf: Path) -> dict[str, tuple[int, int]]:
    """(jobs, runs) per task type, read from the store."""
    if not (wf / "db").is_dir():
        return {}
    with open_store(wf, read_only=True) as db:
        return {name: (len(tt.jobs), len(tt.runs)) for name, tt in db.root.task_types.items()}


def test_cache_refresh_and_identity(cu, tmp_path, monkeypatch):
    wf = tmp_path / "wf"
    first = OPT(atoms=cu, calculator="emt", workflow=wf, fmax=0.05)
    assert not first.cached and first.run == "opt.1" and first["converged"]
    assert counts(wf) == {"opt": (1, 1)}
    # the same structure from a file, the same calculator by its registry name: one job
    cu.write(tmp_path / "Cu.cif")
    again = OPT(atoms=tmp_path / "Cu.cif", calculator="emt-cu", workflow=wf, fmax=0.05)
    assert again.cached and again.run == "opt.1" and dict(again) == dict(first)
    assert counts(wf) == {"opt": (1, 1)}  # nothing recomputed, nothing recorded
    fresh = OPT(atoms=cu, calculator="emt", workflow=wf, fmax=0.05, refresh=True)
    assert not fresh.cached and fresh.run == "opt.2"
    assert counts(wf) == {"opt": (1, 2)}  # a new run of the same job
    OPT(atoms=cu, calculator="emt", workflow=wf, fmax=0.04)
    assert counts(wf) == {"opt": (2, 3)}  # another parameter: another job

    # a change of the task's source is a new identity: a copy of the templates, one edited
    templates = tmp_path / "templates"
    shutil.copytree(tasks.TEMPLATES, templates, ignore=shutil.ignore_patterns("__pycache__"))
    with open(templates / "opt" / "doIt.py", "a") as fh:
        fh.write("# edited\n")
    monkeypatch.setattr(tasks, "TEMPLATES", templates)
    tasks.schema.cache_clear()
    try:
        edited = OPT(atoms=cu, calculator="emt", workflow=wf, fmax=0.05)
    finally:
        tasks.schema.cache_clear()
    assert not edited.cached and edited.run == "opt.4"
    assert counts(wf) == {"opt": (3, 4)}


def test_eos_runs_its_relaxations_as_concurrent_opt_runs(cu, tmp_path):
    wf = tmp_path / "wf"
    result = EOS(atoms=cu, calculator="emt", workflow=wf, n_points=5, max_strain=0.04)
    assert result["opt_runs"] == [f"opt.{i}" for i in range(1, 7)]
    assert counts(wf) == {"opt": (6, 6), "eos": (1, 1)}
    assert 3.58 < result["a0_cubic"] < 3.60 and 125 < result["B0_GPa"] < 145
    with open_store(wf, read_only=True) as db:
        runs = [db.root.task_types["opt"].runs[i] for i in range(2, 7)]  # the five volumes
        spans = [(r.started, r.ended) for r in runs]
    overlapping = sum(1 for a in spans for b in spans if a is not b and a[0] < b[1] and b[0] < a[1])
    assert overlapping > 0, spans  # they ran side by side, not one after the other
    cached = EOS(atoms=cu, calculator="emt", workflow=wf, n_points=5, max_strain=0.04)
    assert cached.cached and counts(wf) == {"opt": (6, 6), "eos": (1, 1)}
    # another EOS over other volumes shares the full relaxation and the unstrained point
    EOS(atoms=cu, calculator="emt", workflow=wf, n_points=5, max_strain=0.06)
    assert counts(wf)["opt"] == (10, 10) and counts(wf)["eos"] == (2, 2)


def test_eos_with_tasks_that_never_connect(cu, tmp_path):
    """Local executor with ``db: none``: every task writes only its outcome file and the
    engine ingests it; the EOS fit reads its OPT runs from the database file (read-only,
    no server) and gives the numbers the connected tasks give. A run's ``ended`` is when
    its task ended, not when the engine got round to ingesting it."""
    online = EOS(atoms=cu, calculator="emt", workflow=tmp_path / "a", n_points=5)
    offline = EOS(
        atoms=cu,
        calculator="emt",
        workflow=tmp_path / "b",
        n_points=5,
        executor={"name": "local", "db": "none"},
    )
    assert not offline.cached
    for key in ("B0_GPa", "V0", "a0_cubic", "relaxed_energy"):
        assert offline[key] == pytest.approx(online[key], rel=1e-9), key
    with open_store(tmp_path / "b", read_only=True) as db:
        for task in ("opt", "eos"):
            for run in db.root.task_types[task].runs.values():
                assert run.state == "FINISHED" and run.extra["outcome_by"] == "orchestrator"
                outcome = json.loads(
                    (tmp_path / "b" / "runs" / task / str(run.id) / OUTCOME_FILE).read_text()
                )
                assert run.started <= run.ended == outcome["time"], run.label


def test_local_db_option_is_checked(cu, tmp_path):
    with pytest.raises(AutopotError, match="executor.db"):
        EOS(
            atoms=cu,
            calculator="emt",
            workflow=tmp_path / "c",
            executor={"name": "local", "db": "tcp"},
        )


def test_md_run_saves_its_trajectory(cu, tmp_path):
    wf = tmp_path / "wf"
    r = MD(
        atoms=cu,
        calculator="emt",
        workflow=wf,
        ensemble="langevin",
        steps=20,
        interval=5,
        temperature_K=[300, 500],
    )
    assert r["steps_done"] == 20 and r["n_frames"] == 5
    assert (wf / "runs" / "md" / "1" / "md.traj").is_file()


BAD = [
    ("opt", {"structure": "missing.cif"}, {}, "structure"),
    ("opt", {}, {"optimizer": "Newton"}, "optimizer"),
    ("opt", {}, {"filter": "Cell"}, "filter"),
    ("md", {}, {"ensemble": "nvx"}, "ensemble"),
    ("md", {}, {"temperature_K": -10}, "temperature_K"),
    ("opt", {}, {"calculator": "no-such-model"}, "calculator"),
    ("opt", {}, {"calculator": "no_such_pkg.calc:Calc"}, "calculator.calculator"),
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A workflow with one recorded OPT, shared by the bad-input cases."""
    wf = tmp_path_factory.mktemp("bad") / "wf"
    OPT(atoms=bulk("Cu", "fcc", a=3.6, cubic=True), calculator="emt", workflow=wf, fmax=0.1)
    return wf


@pytest.mark.parametrize("task, structures, params, field", BAD)
def test_bad_input_names_the_field_and_records_nothing(
    task, structures, params, field, cu, tmp_path, recorded
):
    from autopot.errors import AutopotError
    from autopot.simulate.api import simulate

    wf = recorded
    before = counts(wf)
    mtime = (wf / "db" / "autopot.fs").stat().st_mtime_ns
    structures = {"structure": cu, **structures}
    if structures["structure"] == "missing.cif":
        structures["structure"] = tmp_path / "missing.cif"
    params = dict(params)
    calculator = params.pop("calculator", "emt")
    with pytest.raises(AutopotError) as info:
        simulate(task, structures, calculator, workflow=wf, **params)
    assert info.value.field == field
    assert counts(wf) == before and (wf / "db" / "autopot.fs").stat().st_mtime_ns == mtime


def test_neb_endpoints_with_different_atoms_are_refused(cu, tmp_path):
    wf = tmp_path / "wf"
    final = cu.copy()
    del final[1]
    with pytest.raises(SimulationError) as info:
        NEB_FROM_ENDPOINTS(initial=cu, final=final, calculator="emt", workflow=wf)
    assert info.value.field == "final"
    assert not wf.exists()  # nothing written at all


def test_cli_bad_input_is_one_line(tmp_path):
    (tmp_path / "bad.cif").write_text("this is not a CIF\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autopot.cli",
            "simulate",
            "opt",
            "--structure",
            str(tmp_path / "bad.cif"),
            "-W",
            str(tmp_path / "wf"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "AUTOPOT_SIMULATE_DIR": str(tmp_path / "sim")},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "structure: cannot read a structure" in lines[0], proc.stderr
    assert not (tmp_path / "wf").exists()


def test_cli_records_and_recalls(tmp_path):
    bulk("Cu", "fcc", a=3.6).write(tmp_path / "Cu.xyz")
    cmd = [
        sys.executable,
        "-m",
        "autopot.cli",
        "simulate",
        "opt",
        "-s",
        "Cu.xyz",
        "--calculator",
        "emt",
        "-p",
        "fmax=0.05",
        "--format",
        "json",
    ]
    env = {**os.environ, "AUTOPOT_SIMULATE_DIR": ""}
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env)
    assert "opt.1 (recorded)" in second.stderr and first.stdout == second.stdout
    assert (tmp_path / "autopot-simulate" / "db").is_dir()  # the default embedded store
    runs = subprocess.run(
        [
            sys.executable,
            "-m",
            "autopot.cli",
            "runs",
            "opt",
            "-W",
            "autopot-simulate",
            "--format",
            "csv",
            "--columns",
            "id,state,q.converged",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert runs.stdout.strip().splitlines()[1:] == ["opt.1,FINISHED,True"]


def test_template_defaults_match_the_modules():
    """bd.yaml is the schema the store validates; the modules' defaults are what run()."""
    from autopot.simulate import api

    for task in tasks.TASKS:
        module = api._module(task)
        defaults = module.ENDPOINT_DEFAULTS if task == "neb_from_endpoints" else module.DEFAULTS
        declared = {
            k: p.default
            for k, p in tasks.schema(task).job.items()
            if k
            not in (
                "structure",
                "final",
                "images",
                "calculator",
                "calculator_files",
                "parts_source",
            )
        }
        if task == "md":
            defaults = {
                **defaults,
                "temperature_K": [defaults["temperature_K"]] * 2,
                "pressure_GPa": [defaults["pressure_GPa"]] * 2,
            }
        assert declared == defaults, task


def test_registry_is_data(tmp_path, monkeypatch):
    """A model is added by editing a models.yaml, not code."""
    from autopot.reference.calculators import resolve_spec

    (tmp_path / "models.yaml").write_text(
        "my-lj:\n  calculator: {calculator: 'ase.calculators.lj:LennardJones', kwargs: {sigma: 2.3}}\n"
        "  family: pair\n  training_data: none\n  license: MIT\n"
    )
    monkeypatch.chdir(tmp_path)
    assert resolve_spec("my-lj")["kwargs"] == {"sigma": 2.3}
    assert resolve_spec("emt-cu") == {"calculator": "emt"}


def test_inside_a_running_event_loop(cu, tmp_path):
    """Jupyter runs a loop: the engine then runs in a child process, same record."""
    import asyncio

    async def call():
        return OPT(atoms=cu, calculator="emt", workflow=tmp_path / "wf", fmax=0.05)

    result = asyncio.run(call())
    assert (
        result.run == "opt.1" and not result.cached and counts(tmp_path / "wf") == {"opt": (1, 1)}
    )


def test_vacancy_parts_are_runs_of_their_own(cu, tmp_path):
    """VACANCY = bulk OPT, then the perfect cell, the defect (OPT) and the hop (NEB) side by
    side; the combination equals the in-process computation."""
    from ase.calculators.emt import EMT

    from autopot.simulate import VACANCY, vacancy

    settings = {"supercell": [2, 1, 1], "n_images": 1, "neb_fmax": 0.05}
    r = VACANCY(atoms=cu, calculator="emt", workflow=tmp_path / "wf", **settings)
    assert r["parts"] == {
        "bulk": "opt.1",
        "perfect": "opt.2",
        "defect": "opt.3",
        "neb": "neb_from_endpoints.1",
    }
    assert counts(tmp_path / "wf") == {
        "opt": (3, 3),
        "neb_from_endpoints": (1, 1),
        "vacancy": (1, 1),
    }
    direct = vacancy.run(cu, EMT(), **settings)
    assert r["formation_energy"] == pytest.approx(direct["formation_energy"], abs=1e-6)
    assert r["migration_barrier"] == pytest.approx(direct["migration_barrier"], abs=1e-4)


def test_neb_over_given_images_and_a_query(cu, tmp_path):
    """NEB on a path the user built; results are quantities the query language filters."""
    from ase.mep import NEB as Band

    from autopot.simulate import NEB, PHONON, vacancy

    p = {**vacancy.DEFAULTS, "supercell": [2, 1, 1]}
    _, initial, final, _ = vacancy.defect_cells(cu, p)
    images = [initial, initial.copy(), final]
    Band(images).interpolate(mic=True)
    wf = tmp_path / "wf"
    r = NEB(images=images, calculator="emt", workflow=wf, fmax=0.05)
    assert abs(r["barrier_forward"] - r["barrier_backward"]) < 1e-3 and r["saddle_index"] == 1
    PHONON(
        atoms=bulk("Cu", "fcc", a=3.59),
        calculator="emt",
        workflow=wf,
        supercell=[2, 2, 2],
        band_points=5,
        mesh=[4, 4, 4],
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "autopot.cli",
            "runs",
            "phonon",
            "-W",
            str(wf),
            "--where",
            "gamma_acoustic_max_abs_THz < 0.05",
            "--format",
            "csv",
            "--columns",
            "id,state",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip().splitlines()[1:] == ["phonon.1,FINISHED"], out.stderr


def test_parallel_calls_queue_up(tmp_path):
    """Calls from several threads on one workflow directory wait for each other's turn."""
    import threading

    labels: dict[int, str] = {}

    def call(i: int) -> None:
        atoms = bulk("Cu", "fcc", a=3.6 + 0.01 * i, cubic=True)
        labels[i] = OPT(atoms=atoms, calculator="emt", workflow=tmp_path / "wf", fmax=0.05).run

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(labels.values()) == ["opt.1", "opt.2", "opt.3"]


def test_compare_recalls_the_reference(cu, tmp_path):
    """Validation side by side; the reference's runs are recalled, not recomputed."""
    from autopot.simulate import compare

    wf = tmp_path / "wf"
    settings = {"workflow": wf, "params": {"eos": {"n_points": 5, "max_strain": 0.04}}}
    first = compare(cu, {"EMT": "emt"}, ("eos", "sfe"), **settings)
    before = counts(wf)
    table = compare(cu, {"EMT": "emt", "same EMT": "emt-cu"}, ("eos", "sfe"), **settings)
    assert counts(wf) == before  # both columns answered from the store
    assert table["EMT"]["runs"] == first["EMT"]["runs"] == table["same EMT"]["runs"]
    assert table["same EMT"]["a0_A_dev"] == 0.0 and abs(table["EMT"]["sfe_mJ_m2"]) < 10
