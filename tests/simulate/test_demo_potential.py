"""The potential the demo trained, validated as a user would: its EOS against EMT's.

Uses the session's finished cu-quick demo (tests/conftest.py), so it costs the demo's
minute or two when run alone; in the full suite the demo is shared.
"""

from __future__ import annotations

from pathlib import Path

from ase.build import bulk


def test_demo_mtp_lattice_constant_matches_emt(finished_demo: Path, tmp_path: Path):
    from autopot.results import final_potential
    from autopot.simulate import EOS

    _, _, train, _ = final_potential(finished_demo)
    label = train
    demo_dir = finished_demo.parent / "autopot-workflow"
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    settings = {"workflow": tmp_path / "validation", "n_points": 5, "max_strain": 0.04}
    mtp = EOS(atoms=cu, calculator={"calculator": label, "workflow": str(demo_dir)}, **settings)
    emt = EOS(atoms=cu, calculator="emt", **settings)
    assert abs(mtp["a0_cubic"] / emt["a0_cubic"] - 1) < 0.005, (mtp["a0_cubic"], emt["a0_cubic"])
    assert abs(mtp["B0_GPa"] / emt["B0_GPa"] - 1) < 0.15  # looser: fitted on ±2 % strains only
    # the resolved spec is what is stored: the train run's potential, its types, its sha256
    from autopot.store.database import open_store

    with open_store(tmp_path / "validation", read_only=True) as db:
        job = db.root.task_types["eos"].runs[1].job.params
    assert job["calculator"]["calculator"] == "mtp" and job["calculator"]["train_run"] == label
    assert (
        job["calculator"]["potential"].endswith("pot.mtp")
        and len(job["calculator_files"]["potential"]) == 64
    )
