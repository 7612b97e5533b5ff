"""Run directories: inputs copied in, with the companions their parameters declare."""

from __future__ import annotations

from pathlib import Path

from autopot.engine.rundir import prepare
from autopot.store.schema import TaskSchema

REPO = Path(__file__).resolve().parents[2]


def test_a_potentials_active_set_comes_along_and_a_stale_copy_goes(tmp_path: Path) -> None:
    """md_select's pot_fname declares ``companions: [.als.npz]``: the active set stored
    beside the potential is copied with it; on a resubmission after the source lost it,
    the earlier copy is removed (a cache must not outlive what it was copied from)."""
    schema = TaskSchema.load(REPO / "tasks" / "md_select")
    src = tmp_path / "train1"
    src.mkdir()
    for name, text in {
        "pot.mtp": "MTP\n",
        "pot.mtp.als.npz": "active set\n",
        "ts.cfg": "BEGIN_CFG\n",
        "ts.cfg.als.npz": "not declared for ts_fname\n",
        "start.cfg": "BEGIN_CFG\n",
    }.items():
        (src / name).write_text(text)
    params = {
        "pot_fname": str(src / "pot.mtp"),
        "ts_fname": str(src / "ts.cfg"),
        "cfg_fname": str(src / "start.cfg"),
    }
    run_dir = prepare(schema, tmp_path / "wf", 1, params, {"task": "md_select", "run_id": 1})
    assert (run_dir / "pot.mtp.als.npz").read_text() == "active set\n"
    assert (run_dir / "pot.mtp").read_text() == "MTP\n"
    assert not (run_dir / "ts.cfg.als.npz").exists()

    (src / "pot.mtp.als.npz").unlink()
    prepare(schema, tmp_path / "wf", 1, params, {"task": "md_select", "run_id": 1})
    assert (run_dir / "pot.mtp").is_file()
    assert not (run_dir / "pot.mtp.als.npz").exists()
