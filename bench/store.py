"""Store figures: create 10^5 runs, indexed queries over them, bytes per run.

    python bench/store.py [--n 100000] [--batch 2000]

Runs are created through the same path the engine uses (schema validation, job identity
hashing, BTree indexes) in batched transactions on the embedded FileStorage; a quarter of
them are then moved through SUBMITTED → RUNNING → FINISHED/FAILED with quantities, so the
state index holds realistic mixes. Ends with one JSON line.

Query figures, each on a cold read-only open (a fresh process-level open, as
`autopot runs` does): ``query_s`` state index (count + first page); ``filtered_query_s``
a quantity filter over the FINISHED runs (count); ``param_query_s`` a parameter equality
and a prefix glob over all runs; ``quantity_query_s`` the quantity filter, count + first
page; ``nonindexed_query_s`` the parameter glob with the value index bypassed (every run
and its job read: what a database from before the index costs read-only);
``index_build_s`` the one-time build of the value index of such a database on its first
writable open.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from autopot.store import query
from autopot.store.database import WorkflowPaths, open_store
from autopot.store.records import create_runs
from autopot.store.schema import TaskSchema

ROOT = Path(__file__).resolve().parents[1]


def populate(store, n: int, batch: int) -> tuple[float, float, int]:
    """n sp_calc runs created as the engine creates them; the first quarter moved through
    SUBMITTED → RUNNING → FINISHED (90 %, with quantities) or FAILED. Returns
    (create seconds, update seconds, runs updated)."""
    schema = TaskSchema.load(ROOT / "tasks" / "sp_calc")
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        names = [f"conf_{i:06d}.cfg" for i in range(start, min(n, start + batch))]
        store.transact(
            lambda root, names=names: create_runs(
                root,
                schema,
                {"cfg_fname": names},
                {"calculator": {"calculator": "emt"}},
                run_name="bench",
            )
        )
    create_s = time.perf_counter() - t0

    def finish(root, lo: int, hi: int) -> None:
        runs = root.task_types["sp_calc"].runs
        for i in range(lo, hi):
            run = runs[i]
            run.set_state("SUBMITTED", executor="local", executor_id=str(i))
            run.set_state("RUNNING", host="node1")
            if i % 10:
                run.push("energy", -3.5 - i * 1e-6)
                run.push("max_force", 0.1)
                run.set_state("FINISHED", exit_code=0)
            else:
                run.set_state("FAILED", "exit code 1", exit_code=1)

    t1 = time.perf_counter()
    quarter = n // 4
    for lo in range(1, quarter + 1, batch):
        store.transact(finish, lo, min(quarter + 1, lo + batch))
    return create_s, time.perf_counter() - t1, quarter


def cold(tmp: str):
    """A fresh read-only open (empty object cache) and its sp_calc task type."""
    store = open_store(tmp, read_only=True)
    return store, store.root.task_types["sp_calc"]


def forget_value_index(tmp: str) -> None:
    """Make the database look like one written before the value index (then pack)."""

    def forget(root) -> None:
        for task_type in root.task_types.values():
            del task_type.query_index

    store = open_store(tmp)
    store.transact(forget)
    store.db.pack()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    one = f"conf_{min(12_345, args.n - 1):06d}.cfg"
    prefix = one[: len("conf_") + 4] + "*"  # conf_0123*: 100 runs
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(tmp)
        create_s, update_s, quarter = populate(store, args.n, args.batch)
        store.close()
        size = os.path.getsize(WorkflowPaths(tmp).db_file)

        store, task_type = cold(tmp)
        t2 = time.perf_counter()
        n_finished = query.count(task_type, "state = FINISHED")
        first_page = query.select(task_type, "state = FINISHED", limit=50)
        query_s = time.perf_counter() - t2
        store.close()

        store, task_type = cold(tmp)
        t3 = time.perf_counter()
        n_low = query.count(task_type, "state = FINISHED, energy < -3.501")
        scan_s = time.perf_counter() - t3
        store.close()

        store, task_type = cold(tmp)
        t = time.perf_counter()
        n_one = len(query.select(task_type, f"cfg_fname = {one}"))
        n_prefix = len(query.select(task_type, f"cfg_fname ~ {prefix}"))
        param_s = time.perf_counter() - t
        store.close()

        store, task_type = cold(tmp)
        t = time.perf_counter()
        query.count(task_type, "state = FINISHED, energy < -3.501")
        low_page = query.select(task_type, "state = FINISHED, energy < -3.501", limit=50)
        quantity_s = time.perf_counter() - t
        store.close()

        # no index at all: every run (and its job, for the parameter) is read
        store, task_type = cold(tmp)
        t4 = time.perf_counter()
        n_scan = query.count(task_type, f"cfg_fname ~ {prefix}", use_index=False)
        full_scan_s = time.perf_counter() - t4
        store.close()
        assert n_scan == n_prefix, (n_scan, n_prefix)
        # FileStorage appends: every batch rewrote the index buckets it touched (job
        # identities are random hashes, so most of them). Packing keeps live records only.
        store = open_store(tmp)
        t5 = time.perf_counter()
        store.db.pack()
        pack_s = time.perf_counter() - t5
        store.close()
        packed = os.path.getsize(WorkflowPaths(tmp).db_file)

        forget_value_index(tmp)
        t6 = time.perf_counter()
        open_store(tmp).close()  # the first writable open builds the value index
        build_s = time.perf_counter() - t6
        store, task_type = cold(tmp)
        assert len(query.select(task_type, f"cfg_fname ~ {prefix}")) == n_prefix
        store.close()
    figures = {
        "create_1e5_s": round(create_s * 100_000 / args.n, 2),
        "query_s": round(query_s, 4),
        "bytes_per_run": round(size / args.n, 1),
        "n": args.n,
        "state_updates_per_s": round(4 * quarter / update_s),
        "filtered_query_s": round(scan_s, 3),
        "nonindexed_query_s": round(full_scan_s, 3),
        "bytes_per_run_packed": round(packed / args.n, 1),
        "pack_s": round(pack_s, 1),
        "param_query_s": round(param_s, 4),
        "quantity_query_s": round(quantity_s, 4),
        "index_build_s": round(build_s, 1),
    }
    print(
        f"created {args.n} runs in {create_s:.1f} s; {n_finished} FINISHED found by the index in "
        f"{query_s * 1000:.1f} ms (first page {len(first_page)}); quantity filter over them "
        f"({n_low} matches) {scan_s:.3f} s, with a first page ({len(low_page)}) "
        f"{quantity_s:.3f} s; {one} ({n_one}) and {prefix} ({n_prefix}) "
        f"{param_s * 1000:.1f} ms, {full_scan_s:.2f} s by a scan; "
        f"{size / args.n:.0f} bytes/run as written, {packed / args.n:.0f} after packing "
        f"({pack_s:.1f} s); value index of a database without one built in {build_s:.1f} s"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
