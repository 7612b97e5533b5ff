"""The value index answers every ``--where`` on parameters and quantities exactly as a scan.

Real databases (embedded FileStorage, and ZEO for concurrent pushes). The reference is the
same query with the index bypassed (``use_index=False``: every candidate run is read).
"""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autopot.errors import QueryError
from autopot.store import query
from autopot.store.database import Store, open_store
from autopot.store.records import create_runs, get_run
from autopot.store.schema import TaskSchema
from autopot.store.value_index import task_types_without_index

#: a mix a scan must compare: numbers of three types that are equal, -0.0, inf, NaN,
#: text that looks like numbers, None, numpy scalars, and what is never indexed
#: (a 1-element array, long text, dicts, lists, huge ints are fine)
POOL: list[Any] = [
    -1.5,
    0.0,
    -0.0,
    1,
    1.0,
    True,
    False,
    None,
    "1",
    "1.0",
    "abc",
    "a*b",
    "",
    "None",
    "True",
    float("inf"),
    float("-inf"),
    float("nan"),
    np.float64(2.5),
    np.int64(3),
    np.float32(0.1),
    np.bool_(True),
    np.array([7.0]),
    "x" * 300,
    {"a": 1},
    [1, 2],
    2**70,
    -7,
    12.25,
]

NAMES = [
    "energy",
    "q.energy",
    "cfg_fname",
    "job.cfg_fname",
    "pot_fname",  # a job parameter that some runs also push as a quantity
    "q.pot_fname",
    "atom_types",  # a run parameter that some runs also push as a quantity
    "run.atom_types",
    "q.atom_types",
    "series",
    "calculator",
    "flag",
]
OPERANDS = [
    "1",
    "1.0",
    "-0.0",
    "0",
    "true",
    "none",
    "abc",
    "'1'",
    "1|abc",
    "inf",
    "-inf",
    "nan",
    "2.5",
    "12.25",
    "a*",
    "*b*",
    "1*",
    "?",
    "[ab]*",
    "N*",
    "-*",
    "c1*",
    "c00*.cfg",
    "''",
    "x" * 300,
    "Cu",
]
OPS = ["=", "==", "!=", "<", "<=", ">", ">=", "~"]


def _schema(template: Path) -> TaskSchema:
    return TaskSchema.load(template)


def populate(store: Store, template: Path, n: int = 120, seed: int = 7) -> None:
    """n runs with parameters and pushed quantities of every kind (see POOL)."""
    schema = _schema(template)
    rng = random.Random(seed)
    names = [f"c{i:03d}.cfg" if i % 7 else str(i) for i in range(n)]
    store.transact(
        lambda root: create_runs(
            root, schema, {"cfg_fname": names}, {"atom_types": "Cu=0"}, run_name="a"
        )
    )
    store.transact(
        lambda root: create_runs(
            root,
            schema,
            {"cfg_fname": ["extra.cfg"], "pot_fname": "1"},
            {"atom_types": ""},
            run_name="b",
        )
    )

    def push(root: Any) -> None:
        for i in range(1, n + 1):
            run = get_run(root, f"sp_calc.{i}")
            if i % 3:
                run.set_state("SUBMITTED")
                run.set_state("RUNNING")
                run.set_state("FINISHED" if i % 5 else "FAILED")
            if i % 11:
                run.push("energy", rng.choice(POOL))
            if i % 4 == 0:
                run.push("pot_fname", rng.choice(POOL))
                run.push("atom_types", rng.choice(POOL))
            if i % 6 == 0:
                run.push("series", float(i), step=0)
            run.push("flag", rng.choice([True, False, 0, 1, None, "1"]))
            if i % 9 == 0:
                run.push("forces", np.zeros((2, 3)))

    store.transact(push)


def outcome(tt: Any, where: str, *, use_index: bool, strict: bool = False) -> Any:
    """(ids, count, first page): each a list, or the QueryError's message."""

    def attempt(fn: Any) -> Any:
        try:
            return fn()
        except QueryError as exc:
            return ("error", exc.message)

    kw = {"strict": strict, "use_index": use_index}
    ids = attempt(lambda: [r.id for r in query.select(tt, where, **kw)])
    n = attempt(lambda: query.count(tt, where, **kw))
    first = attempt(lambda: [r.id for r in query.select(tt, where, limit=3, **kw)])
    if isinstance(ids, list):
        assert n == len(ids) and first == ids[:3]
    return ids, n, first


def assert_same(tt: Any, wheres: list[str], strict: bool = False) -> int:
    """Each query gives the same runs (or the same error) with and without the index;
    returns how many matched something, so a test can tell it compared real answers."""
    nonempty = 0
    for where in wheres:
        indexed = outcome(tt, where, use_index=True, strict=strict)
        scanned = outcome(tt, where, use_index=False, strict=strict)
        assert indexed == scanned, where
        nonempty += isinstance(indexed[0], list) and bool(indexed[0])
    return nonempty


def all_wheres() -> list[str]:
    return [f"{name} {op} {value}" for name, op, value in itertools.product(NAMES, OPS, OPERANDS)]


def test_every_operator_gives_the_scan_result(tmp_path: Path, template: Path) -> None:
    with open_store(tmp_path / "wf") as store:
        populate(store, template)
        tt = store.root.task_types["sp_calc"]
        wheres = all_wheres()
        assert assert_same(tt, wheres) > len(wheres) // 3
        combined = [
            "state = FINISHED, energy > 0",
            "state = FINISHED|FAILED, energy != 1, flag = 1",
            "run_name = a, cfg_fname ~ c0*, energy <= 2.5",
            "id > 50, q.pot_fname = none",
            "energy ~ *, cfg_fname != 0, exit_code = none",
            "energy >= -inf, energy < inf",
            "pot_fname = 1, atom_types = ''",
        ]
        assert assert_same(tt, combined) == len(combined)


def test_strict_unknown_names_and_arrays_behave_as_the_scan(tmp_path: Path, template: Path) -> None:
    with open_store(tmp_path / "wf") as store:
        populate(store, template)
        tt = store.root.task_types["sp_calc"]
        wheres = [
            "stat = FINISHED",
            "energi < 3",
            "q.cfg_fname = x",
            "state = CREATED, series = 6.0",
            "state = FAILED, energy = 1",
            "forces = 1",  # arrays are refused by the scan, and so with the index
            "energy = 1",
            # refused where (and only where) a scan meets the array, in its order
            "exit_code > 0.1, forces < 1",
            "forces < *b*, calculator ~ 3, run.atom_types >= c1*",
            "energy > 0, forces = 1",
            "forces = 1, energy > 0",
            "id >= 50, state = FINISHED, flag = 1, forces != 2",
        ]
        assert_same(tt, wheres, strict=True)
        with pytest.raises(QueryError, match="unknown name 'stat'"):
            query.select(tt, "stat = FINISHED", strict=True)
        with pytest.raises(QueryError, match="array of shape"):
            query.select(tt, "forces = 1")


def test_index_follows_pushes_and_ignores_aborted_transactions(
    tmp_path: Path, template: Path
) -> None:
    with open_store(tmp_path / "wf") as store:
        populate(store, template, n=40)
        tt = store.root.task_types["sp_calc"]

        def repush(root: Any) -> None:
            for i in range(1, 41, 3):
                run = get_run(root, f"sp_calc.{i}")
                run.push("energy", -100.0 - i)  # replaces whatever was there
                run.push("energy", -100.0 - i)  # the same value again
                run.push("series", float(i), step=1)

        store.transact(repush)
        assert [r.id for r in query.select(tt, "energy < -99, energy > -999")] == list(
            range(1, 41, 3)
        )
        assert query.select(tt, "energy = -104") == [get_run(store.root, "sp_calc.4")]

        def broken(root: Any) -> None:
            get_run(root, "sp_calc.1").push("energy", 12345.0)
            get_run(root, "sp_calc.2").push("brand_new", 1)
            create_runs(root, _schema(template), {"cfg_fname": "aborted.cfg"}, run_name="a")
            raise RuntimeError("fails after writing")

        with pytest.raises(RuntimeError):
            store.transact(broken)
        assert query.select(tt, "energy = 12345") == []
        assert query.select(tt, "energy = -101") == [get_run(store.root, "sp_calc.1")]
        assert query.select(tt, "cfg_fname = aborted.cfg") == []
        with pytest.raises(QueryError, match="unknown name 'brand_new'"):
            query.select(tt, "brand_new = 1", strict=True)
        # the next run gets the id the aborted one had, and is found under its own name
        store.transact(lambda root: create_runs(root, _schema(template), {"cfg_fname": "kept.cfg"}))
        assert [r.id for r in query.select(tt, "cfg_fname = kept.cfg")] == [42]
        assert assert_same(tt, all_wheres()[::7]) > 0


def _records(store: Store) -> dict[bytes, tuple[bytes, bytes]]:
    """Every stored run and job record as (pickle, serial), by oid."""
    out = {}
    for tt in store.root.task_types.values():
        for obj in itertools.chain(tt.runs.values(), tt.jobs.values()):
            out[obj._p_oid] = store.db.storage.load(obj._p_oid)
    return out


def test_database_without_index_is_scanned_then_indexed_once(
    tmp_path: Path, template: Path
) -> None:
    """A database written before the index: read-only opens scan (and change nothing);
    the first writable open builds the index without rewriting any run or job."""
    wf = tmp_path / "wf"
    with open_store(wf) as store:
        populate(store, template, n=60)
        tt = store.root.task_types["sp_calc"]
        expected = {w: outcome(tt, w, use_index=False) for w in all_wheres()[::5]}

        def forget(root: Any) -> None:  # what a database from before this change looks like
            for task_type in root.task_types.values():
                del task_type.query_index

        store.transact(forget)
        store.db.pack()
        before = _records(store)
    size = (wf / "db" / "autopot.fs").stat().st_size

    with open_store(wf, read_only=True) as store:
        assert task_types_without_index(store.root)
        tt = store.root.task_types["sp_calc"]
        assert {w: outcome(tt, w, use_index=True) for w in expected} == expected
    assert (wf / "db" / "autopot.fs").stat().st_size == size

    with open_store(wf) as store:  # writable: builds the index in its own transaction
        assert task_types_without_index(store.root) == []
        assert _records(store) == before
        tt = store.root.task_types["sp_calc"]
        assert {w: outcome(tt, w, use_index=True) for w in expected} == expected
        store.transact(lambda root: get_run(root, "sp_calc.5").push("energy", -555.0))
        assert query.select(tt, "energy = -555") == [get_run(store.root, "sp_calc.5")]
    built = (wf / "db" / "autopot.fs").stat().st_size
    with open_store(wf) as store:  # built once: a second open writes nothing
        assert _records(store) != before  # (sp_calc.5 changed since)
    assert (wf / "db" / "autopot.fs").stat().st_size == built


def test_concurrent_pushes_through_zeo_keep_the_index_exact(
    zeo_server: Path, template: Path
) -> None:
    """Two clients push into the same index buckets in overlapping transactions; the
    second commit merges (BTree conflict resolution) or retries, and nothing is lost."""
    from ZODB.POSException import ConflictError

    schema = _schema(template)
    a, b = open_store(zeo_server), open_store(zeo_server)
    try:
        assert a.zeo and b.zeo
        a.transact(
            lambda root: create_runs(root, schema, {"cfg_fname": [f"{i}.cfg" for i in range(20)]})
        )
        deadline = time.monotonic() + 10
        while "sp_calc" not in b.root.task_types and time.monotonic() < deadline:
            time.sleep(0.01)  # ZEO delivers the other client's commit asynchronously
            b.sync()
        for i in range(1, 21, 2):
            a.tm.begin()
            b.tm.begin()
            get_run(a.root, f"sp_calc.{i}").push("energy", -float(i))
            get_run(b.root, f"sp_calc.{i + 1}").push("energy", -float(i + 1))
            a.tm.commit()
            try:
                b.tm.commit()
            except ConflictError:
                b.tm.abort()
                b.transact(
                    lambda root, i=i: get_run(root, f"sp_calc.{i + 1}").push(
                        "energy", -float(i + 1)
                    )
                )
        deadline = time.monotonic() + 10
        while "energy" not in get_run(a.root, "sp_calc.20").quantities:
            assert time.monotonic() < deadline, "b's last commit never reached a"
            time.sleep(0.01)
            a.sync()
        tt = a.root.task_types["sp_calc"]
        assert [r.id for r in query.select(tt, "energy <= -15")] == list(range(15, 21))
        assert assert_same(tt, [f"energy {op} -10" for op in OPS]) > 0
    finally:
        a.close()
        b.close()
