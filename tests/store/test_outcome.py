"""Outcome files: exact round trip of what tasks push, and ingestion exactly once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autopot.store.database import open_store
from autopot.store.outcome import (
    OUTCOME_FILE,
    apply_outcome,
    new_outcome,
    read_outcome,
    write_outcome,
)
from autopot.store.records import create_runs, get_run
from autopot.store.schema import TaskSchema


def test_round_trip_is_exact(tmp_path: Path) -> None:
    forces = np.random.default_rng(0).normal(size=(5, 3))
    pushes = [
        ("energy", -3.25, None),
        ("forces", forces, None),
        ("grade", np.float32(2.5), None),
        ("loss", 0.1, 3),
        ("ids", [1, 2, (3, 4)], None),
        ("meta", {"a": 1, 2: "b"}, None),
    ]
    outcome = new_outcome("FINISHED", pushes=pushes, outputs=["result.cfg"], host="node7")
    write_outcome(tmp_path, outcome)
    assert not list(tmp_path.glob(f".{OUTCOME_FILE}.*"))  # the temporary file is gone
    back = read_outcome(tmp_path)
    assert back is not None and back["key"] == outcome["key"]
    by_name = {name: (value, step) for name, value, step in back["pushes"]}
    assert (
        np.array_equal(by_name["forces"][0], forces) and by_name["forces"][0].dtype == forces.dtype
    )
    assert by_name["grade"][0] == np.float32(2.5) and by_name["loss"] == (0.1, 3)
    assert by_name["ids"][0] == [1, 2, (3, 4)] and by_name["meta"][0] == {"a": 1, 2: "b"}


def test_garbage_is_ignored_not_fatal(tmp_path: Path) -> None:
    (tmp_path / OUTCOME_FILE).write_text("{not json")
    assert read_outcome(tmp_path) is None
    assert read_outcome(tmp_path / "missing") is None


def test_ingested_exactly_once(tmp_path: Path, template: Path) -> None:
    schema = TaskSchema.load(template)
    outcome = new_outcome(
        "FINISHED", pushes=[("energy", -1.0, None), ("loss", 0.5, 1)], manifest={"a": ("x", 1)}
    )
    with open_store(tmp_path / "wf") as store:
        store.transact(lambda root: create_runs(root, schema, {"cfg_fname": "a.cfg"}))
        store.transact(lambda root: get_run(root, "sp_calc.1").set_state("SUBMITTED"))
        first = store.transact(lambda root: apply_outcome(get_run(root, "sp_calc.1"), outcome))
        again = store.transact(lambda root: apply_outcome(get_run(root, "sp_calc.1"), outcome))
        run = get_run(store.root, "sp_calc.1")
        assert (first, again) == (True, False)
        assert run.state == "FINISHED" and run.quantities == {"energy": -1.0, "loss": [(1, 0.5)]}
        assert run.extra["outcome_key"] == outcome["key"] and run.manifest == {"a": ("x", 1)}
