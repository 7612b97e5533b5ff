"""The store: identity, dedupe, states and indexes, queries, concurrency through ZEO."""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from autopot.errors import QueryError, StoreError
from autopot.store import query
from autopot.store.database import Store, WorkflowPaths, open_store
from autopot.store.records import create_runs, get_run
from autopot.store.schema import TaskSchema


def make(store: Store, schema: TaskSchema, **job) -> list[tuple[str, bool]]:
    return store.transact(
        lambda root: [(r.label, c) for r, c in create_runs(root, schema, job, run_name="x")]
    )


def test_same_job_twice_returns_existing_and_lists_expand(tmp_path: Path, template: Path) -> None:
    schema = TaskSchema.load(template)
    with open_store(tmp_path / "wf") as store:
        assert make(store, schema, cfg_fname=["a.cfg", "b.cfg"]) == [
            ("sp_calc.1", True),
            ("sp_calc.2", True),
        ]
        assert make(store, schema, cfg_fname=["b.cfg", "c.cfg"]) == [
            ("sp_calc.2", False),
            ("sp_calc.3", True),
        ]
        task_type = store.root.task_types["sp_calc"]
        assert len(task_type.jobs) == 3 and len(task_type.runs) == 3


def test_changed_doit_makes_a_new_identity(tmp_path: Path, template: Path) -> None:
    with open_store(tmp_path / "wf") as store:
        first = make(store, TaskSchema.load(template), cfg_fname="a.cfg")
        (template / "doIt.py").write_text((template / "doIt.py").read_text() + "\n# changed\n")
        second = make(store, TaskSchema.load(template), cfg_fname="a.cfg")
        assert first == [("sp_calc.1", True)] and second == [("sp_calc.2", True)]
        jobs = store.root.task_types["sp_calc"].jobs
        assert jobs[1].source_hash != jobs[2].source_hash


def test_states_indexes_quantities_and_queries(tmp_path: Path, template: Path) -> None:
    schema = TaskSchema.load(template)
    with open_store(tmp_path / "wf") as store:
        make(store, schema, cfg_fname=[f"{i}.cfg" for i in range(10)])

        def advance(root) -> None:
            for i in range(1, 11):
                run = get_run(root, f"sp_calc.{i}")
                run.set_state("SUBMITTED", executor_id=str(100 + i))
                run.set_state("RUNNING")
                run.push("energy", -float(i))
                run.push("forces", np.full((2, 3), float(i)))
                run.set_state(
                    "FINISHED" if i % 3 else "FAILED",
                    "" if i % 3 else "exit code 1",
                    exit_code=0 if i % 3 else 1,
                )

        store.transact(advance)
        tt = store.root.task_types["sp_calc"]
        assert query.count(tt, "state = FINISHED") == 7
        assert [r.id for r in query.select(tt, "state = FAILED")] == [3, 6, 9]
        assert [r.id for r in query.select(tt, "state = FINISHED, energy < -7")] == [8, 10]
        assert [r.id for r in query.select(tt, "cfg_fname = 1.cfg|2.cfg")] == [2, 3]
        assert [r.id for r in query.select(tt, "id >= 9, run_name = x")] == [9, 10]
        assert query.count(tt, "state = FINISHED|FAILED, exit_code != 0") == 3
        assert get_run(store.root, "sp_calc.4").quantities["forces"].shape == (2, 3)
        with pytest.raises(StoreError, match="illegal transition FINISHED -> RUNNING"):
            store.transact(lambda root: get_run(root, "sp_calc.1").set_state("RUNNING"))
        assert get_run(store.root, "sp_calc.1").state == "FINISHED"
        with pytest.raises(QueryError, match="where"):
            query.parse("state FINISHED")


def _push_worker(directory: str, labels: list[str], n: int) -> None:
    store = open_store(directory)
    for label in labels:
        store.transact(
            lambda root, label=label: get_run(root, label).set_state(
                "RUNNING", host=str(os.getpid())
            )
        )
        for k in range(n):
            store.transact(
                lambda root, label=label, k=k: get_run(root, label).push("step", k, step=k)
            )
        store.transact(lambda root, label=label: get_run(root, label).set_state("FINISHED"))
    store.close()


def test_concurrent_processes_through_zeo_lose_nothing(zeo_server: Path, template: Path) -> None:
    paths = WorkflowPaths(zeo_server)
    assert stat.S_IMODE(os.stat(paths.socket).st_mode) == 0o600
    schema = TaskSchema.load(template)
    store = open_store(zeo_server)
    assert store.zeo
    labels = [label for label, _ in make(store, schema, cfg_fname=[f"{i}.cfg" for i in range(16)])]
    store.transact(lambda root: [get_run(root, lab).set_state("SUBMITTED") for lab in labels])
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_push_worker, args=(str(zeo_server), labels[i::4], 15)) for i in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store.sync()
    tt = store.root.task_types["sp_calc"]
    assert query.count(tt, "state = FINISHED") == 16
    assert query.count(tt, "state = RUNNING") == query.count(tt, "state = SUBMITTED") == 0
    for label in labels:
        run = get_run(store.root, label)
        assert [k for k, _ in run.quantities["step"]] == list(range(15))
        assert [h[1] for h in run.history] == ["CREATED", "SUBMITTED", "RUNNING", "FINISHED"]
    store.close()


def test_input_file_content_is_part_of_identity(tmp_path: Path, template: Path) -> None:
    schema = TaskSchema.load(template)
    cfg = tmp_path / "one.cfg"
    cfg.write_text("first")
    with open_store(tmp_path / "wf") as store:
        assert make(store, schema, cfg_fname=str(cfg)) == [("sp_calc.1", True)]
        assert make(store, schema, cfg_fname=str(cfg)) == [("sp_calc.1", False)]
        cfg.write_text("second")
        assert make(store, schema, cfg_fname=str(cfg)) == [("sp_calc.2", True)]


def test_relative_input_paths_are_read_from_base_dir(tmp_path: Path, template: Path) -> None:
    schema = TaskSchema.load(template)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "c.cfg").write_text("first")
    with open_store(tmp_path / "wf") as store:

        def create(root):
            return [
                (r.label, c)
                for r, c in create_runs(
                    root, schema, {"cfg_fname": "c.cfg"}, base_dir=tmp_path / "in"
                )
            ]

        assert store.transact(create) == [("sp_calc.1", True)]
        assert store.transact(create) == [("sp_calc.1", False)]
        (tmp_path / "in" / "c.cfg").write_text("second")
        assert store.transact(create) == [("sp_calc.2", True)]
        job = store.root.task_types["sp_calc"].jobs[2]
        assert job.params["cfg_fname"] == "c.cfg"  # stored as given


def test_query_values_typos_and_arrays(tmp_path: Path, template: Path) -> None:
    schema = TaskSchema.load(template)
    with open_store(tmp_path / "wf") as store:
        store.transact(
            lambda root: create_runs(root, schema, {"cfg_fname": ["1", "2"]}, run_name="2024")
        )

        def push(root) -> None:
            get_run(root, "sp_calc.1").push("forces", np.zeros((2, 3)))
            get_run(root, "sp_calc.1").push("energy", np.float64(-2.5))
            get_run(root, "sp_calc.2").push("energy", np.array([-1.0]))

        store.transact(push)
        tt = store.root.task_types["sp_calc"]
        assert [r.id for r in query.select(tt, "run_name = 2024")] == [1, 2]  # text, not int
        assert [r.id for r in query.select(tt, "cfg_fname = 2")] == [2]  # text param vs number
        assert [r.id for r in query.select(tt, "energy < -2")] == [
            1
        ]  # numpy scalar, 1-element array
        assert [r.id for r in query.select(tt, "q.energy > -2")] == [2]
        assert query.select(tt, "nothing > 1") == []  # lenient from Python
        with pytest.raises(QueryError, match="unknown name 'nothing'"):
            query.select(tt, "nothing > 1", strict=True)
        with pytest.raises(QueryError, match=r"array of shape \(2, 3\)"):
            query.select(tt, "forces > 1")
        with pytest.raises(QueryError, match="unknown state 'FINSHED'"):
            query.parse("state = FINSHED")


def test_writes_survive_a_server_restart(zeo_server: Path, template: Path) -> None:
    import threading
    import time

    from autopot.store.server import server_pid, start_server, stop_server

    schema = TaskSchema.load(template)
    store = open_store(zeo_server)
    try:
        make(store, schema, cfg_fname="a.cfg")
        stop_server(server_pid(zeo_server))
        handles = []
        restart = threading.Timer(1.0, lambda: handles.append(start_server(zeo_server)))
        restart.start()
        t0 = time.monotonic()
        store.transact(
            lambda root: get_run(root, "sp_calc.1").push("energy", -1.0)
        )  # waits, then commits
        restart.join()
        assert time.monotonic() - t0 >= 0.9
        store.sync()
        assert get_run(store.root, "sp_calc.1").quantities == {"energy": -1.0}
    finally:
        store.close()
        pid = server_pid(zeo_server)
        if pid:
            stop_server(pid)


def test_identity_prefix_collision_and_legacy_index(tmp_path: Path) -> None:
    """Two identities sharing the 64-bit index prefix stay two jobs; jobs recorded only in
    the full-identity index (older databases) are still found."""
    from autopot.store.model import TaskType, _identity_key

    with open_store(tmp_path / "wf") as store:

        def check(root) -> None:
            tt = TaskType("t", {})
            root.task_types["t"] = tt
            a, b = "ab" * 8 + "0" * 48, "ab" * 8 + "1" * 48
            assert _identity_key(a) == _identity_key(b)
            ja, created_a = tt.add_job({"x": 1}, a, "s")
            jb, created_b = tt.add_job({"x": 2}, b, "s")
            assert created_a and created_b and ja.id != jb.id
            assert tt.add_job({"x": 1}, a, "s") == (ja, False)
            assert tt.add_job({"x": 2}, b, "s") == (jb, False)
            assert tt.find_job(b) is jb and tt.find_job("f" * 64) is None
            tt.job_by_hash = None  # as in a database written before the prefix index
            tt.job_by_identity[a] = ja.id
            assert tt.add_job({"x": 1}, a, "s") == (ja, False)

        store.transact(check)
