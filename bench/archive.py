"""Archive figures: snapshot + archive of a large workflow while its ZEO server serves it,
then verify and extract.

    python bench/archive.py [--n 100000] [--dirs 2000]

The database holds ``n`` sp_calc runs (built as bench/store.py builds them); ``dirs`` of
them get a run directory with a 32-atom result.cfg, a log and a marker, like real sp_calc
runs. The archive is taken through the live ZEO server (the orchestrator's situation).
Peak memory is this process's maximum RSS (snapshot, packing and verification all run
here). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store import populate  # noqa: E402  (bench/store.py)

from autopot.results.archive import create_archive, extract_archive, verify_archive  # noqa: E402
from autopot.store.database import open_store  # noqa: E402
from autopot.store.server import start_server, stop_server  # noqa: E402


def make_run_dirs(workflow: Path, count: int) -> None:
    import numpy as np
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from autopot.mtp.cfg import write_cfg

    rng = np.random.default_rng(0)
    base = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    for i in range(1, count + 1):
        run_dir = workflow / "runs" / "sp_calc" / str(i)
        run_dir.mkdir(parents=True)
        atoms = base.copy()
        atoms.positions += rng.normal(0, 0.03, atoms.positions.shape)
        atoms.calc = EMT()
        atoms.get_forces()
        write_cfg(run_dir / "result.cfg", [atoms], "Cu=0")
        (run_dir / "stdout.log").write_text(
            f"sp_calc {i}: energy {atoms.get_potential_energy():.6f}\n"
        )
        (run_dir / "autopot_run.json").write_text(json.dumps({"task": "sp_calc", "run_id": i}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dirs", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workflow = Path(tmp) / "wf"
        store = open_store(workflow)
        populate(store, args.n, args.batch)
        store.close()
        make_run_dirs(workflow, args.dirs)
        db_bytes = (workflow / "db" / "autopot.fs").stat().st_size
        server = start_server(workflow)
        try:
            reader = open_store(workflow, read_only=True)  # a connected client meanwhile
            t0 = time.perf_counter()
            result = create_archive(workflow, Path(tmp) / "wf.tar.gz")
            archive_s = time.perf_counter() - t0
            reader.close()
        finally:
            stop_server(server.pid)
        t1 = time.perf_counter()
        checked = verify_archive(result.path)
        verify_s = time.perf_counter() - t1
        t2 = time.perf_counter()
        extract_archive(result.path, Path(tmp) / "restored")
        extract_s = time.perf_counter() - t2
        snapshot_bytes = (Path(tmp) / "restored" / "wf" / "db" / "autopot.fs").stat().st_size
    figures = {
        "runs": args.n,
        "files": checked.files,
        "archive_s": round(archive_s, 2),
        "verify_s": round(verify_s, 2),
        "extract_s": round(extract_s, 2),
        "archive_bytes": result.bytes_out,
        "db_bytes": db_bytes,
        "db_snapshot_bytes": snapshot_bytes,
        "peak_mem_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(
        f"archived {args.n} runs and {checked.files} files through a live ZEO server in {archive_s:.1f} s "
        f"({result.bytes_in / 1e6:.1f} MB -> {result.bytes_out / 1e6:.1f} MB; database {db_bytes / 1e6:.1f} MB "
        f"-> {snapshot_bytes / 1e6:.1f} MB packed); verify {verify_s:.1f} s; extract {extract_s:.1f} s"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
