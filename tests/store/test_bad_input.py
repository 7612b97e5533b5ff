"""Bad input: one line naming file and field; the database is left as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from autopot.errors import SchemaError, StoreError
from autopot.store.database import WorkflowPaths, open_store
from autopot.store.records import create_runs
from autopot.store.schema import TaskSchema


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("bd", "needle"),
    [
        ("job: [unclosed\n", "bd.yaml: line 2: malformed YAML"),
        ("job:\n  cfg_fname: complex\n", "bd.yaml: job.cfg_fname: unknown type 'complex'"),
        ("job:\n  n: {type: int, default: 1.5}\n", "bd.yaml: job.n: expected int, got float 1.5"),
        ("job:\n  a: str\nrun:\n  a: str\n", "declared in both job and run spaces"),
        (
            "job:\n  a: str\nfiles: [run.sh, missing.py]\n",
            "missing.py: files: template file listed in bd.yaml is missing",
        ),
        (
            "job:\n  a: {type: str, companions: [.als.npz]}\n",
            "bd.yaml: job.a.companions: companions needs file: true",
        ),
        (
            "job:\n  a: {type: str, file: true, companions: [../x]}\n",
            "bd.yaml: job.a.companions: companions needs file: true and a list of suffixes",
        ),
    ],
    ids=[
        "malformed",
        "unknown-type",
        "bad-default",
        "clash",
        "missing-file",
        "companions-without-file",
        "companions-not-a-suffix",
    ],
)
def test_bad_bd_yaml(template: Path, bd: str, needle: str) -> None:
    (template / "bd.yaml").write_text(bd)
    with pytest.raises(SchemaError) as err:
        TaskSchema.load(template)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_bad_values_leave_database_unchanged(tmp_path: Path, template: Path) -> None:
    schema = TaskSchema.load(template)
    wf = tmp_path / "wf"
    with open_store(wf) as store:
        store.transact(lambda root: create_runs(root, schema, {"cfg_fname": "a.cfg"}))
    before = sha(WorkflowPaths(wf).db_file)
    cases = [
        ({"cfg_fname": 3}, "sp_calc.cfg_fname: expected str, got int 3"),
        ({"cfg_fname": "a.cfg", "temperature": 3}, "sp_calc.temperature: unknown job parameter"),
        ({}, "sp_calc.cfg_fname: required job parameter"),
        ({"cfg_fname": ["b.cfg", 7]}, "expected str, got int 7"),
    ]
    with open_store(wf) as store:
        for values, needle in cases:
            with pytest.raises(SchemaError) as err:
                store.transact(lambda root, values=values: create_runs(root, schema, values))
            assert needle in str(err.value), str(err.value)
            assert str(schema.source) in str(err.value)
        with pytest.raises(SchemaError, match="sp_calc.calculator: expected dict"):
            store.transact(
                lambda root: create_runs(
                    root, schema, {"cfg_fname": "z.cfg"}, {"calculator": "emt"}
                )
            )
        assert len(store.root.task_types["sp_calc"].runs) == 1
    assert sha(WorkflowPaths(wf).db_file) == before


def test_locked_database(tmp_path: Path, template: Path) -> None:
    wf = tmp_path / "wf"
    with open_store(wf) as store:
        store.transact(
            lambda root: create_runs(root, TaskSchema.load(template), {"cfg_fname": "a.cfg"})
        )
        before = sha(WorkflowPaths(wf).db_file)
        with pytest.raises(StoreError, match="locked by another process") as err:
            open_store(wf)
        assert str(WorkflowPaths(wf).db_file) in str(err.value) and "\n" not in str(err.value)
        assert sha(WorkflowPaths(wf).db_file) == before


def test_missing_template_pieces(tmp_path: Path, template: Path) -> None:
    with pytest.raises(SchemaError, match="task template directory not found"):
        TaskSchema.load(tmp_path / "nowhere")
    (template / "bd.yaml").unlink()
    with pytest.raises(SchemaError, match=r"bd.yaml: missing bd.yaml in task template"):
        TaskSchema.load(template)


def test_corrupted_database_is_refused_and_untouched(tmp_path: Path, template: Path) -> None:
    wf = tmp_path / "wf"
    db_file = WorkflowPaths(wf).db_file
    db_file.parent.mkdir(parents=True)
    db_file.write_bytes(b"this is not a FileStorage" * 10)
    before = sha(db_file)
    with pytest.raises(StoreError, match="cannot open database") as err:
        open_store(wf)
    assert str(db_file) in str(err.value) and "\n" not in str(err.value)
    assert sha(db_file) == before


def test_dead_server_address(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database server is listening"):
        open_store(tmp_path, address=str(tmp_path / "nothing.sock"))


def test_crash_in_the_middle_of_a_commit_leaves_no_half_written_run(
    tmp_path: Path, template: Path
) -> None:
    """A torn last transaction (power cut while writing) is cut off on the next opening:
    the run is as it was before that commit, never half-updated; the torn bytes are kept
    in a side file by FileStorage."""
    schema = TaskSchema.load(template)
    wf = tmp_path / "wf"
    db_file = WorkflowPaths(wf).db_file
    with open_store(wf) as store:
        store.transact(lambda root: create_runs(root, schema, {"cfg_fname": "a.cfg"}))
    size_before = db_file.stat().st_size
    with open_store(wf) as store:

        def finish(root) -> None:
            run = root.task_types["sp_calc"].runs[1]
            run.set_state("RUNNING", host="node1")
            run.push("energy", -1.0)
            run.set_state("FINISHED", exit_code=0)

        store.transact(finish)
    data = db_file.read_bytes()
    assert len(data) > size_before
    db_file.write_bytes(data[: size_before + (len(data) - size_before) // 2])  # torn commit
    (db_file.parent / (db_file.name + ".index")).unlink(missing_ok=True)
    with open_store(wf) as store:
        tt = store.root.task_types["sp_calc"]
        run = tt.runs[1]
        assert run.state == "CREATED" and run.quantities == {} and run.host == ""
        assert list(tt.by_state["CREATED"]) == [1] and not tt.by_state.get("FINISHED")
        store.transact(lambda root: root.task_types["sp_calc"].runs[1].set_state("SUBMITTED"))
    assert list(db_file.parent.glob(db_file.name + ".tr*"))
