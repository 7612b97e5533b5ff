"""The validation stage on the embedded demo, and re-validation from the store.

    python bench/validate.py [--preset cu-quick] [--keep DIR]

1. Runs the demo (default ``cu-quick``) to convergence through the CLI in a temporary
   copy of the repository's workflow; its last stage validates the final potential
   (suite: autopot/validation/suites/fcc.yaml) with the MTP and with EMT, as simulation
   runs in the workflow's store. ``validation_wall_s`` is that stage's wall time.
2. Re-validates the same potential with ``autopot.validation.validate``: every run of
   both sides is recalled from the store (``revalidate_cached_wall_s``).
3. Validates the previous potential (train.N-1): only its own side is computed; every
   reference-side run is recalled (``second_reference_recalled`` of ``..._total``).

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rel(rows: list[dict], name: str) -> float | None:
    for r in rows:
        if r["property"] == name:
            return None if r["rel_err"] is None else round(r["rel_err"], 5)
    return None


def value(rows: list[dict], name: str) -> float | None:
    for r in rows:
        if r["property"] == name:
            return None if r["value"] is None else round(r["value"], 4)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cu-quick")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="autopot-bench-validate-"))
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("tasks", "workflow"):
        shutil.copytree(ROOT / name, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "motoko.yaml", workdir / "motoko.yaml")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "autopot.cli", "orchestrator", "start", "--preset", args.preset],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    demo_wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"demo failed ({proc.returncode}): {proc.stderr[-2000:]}")
    sys.stderr.write(proc.stdout[proc.stdout.find("AutoPot summary") :])

    from autopot.store.workflow_records import WorkflowRecords
    from autopot.validation import validate

    wf = workdir / "autopot-workflow"
    with WorkflowRecords.open(wf) as records:
        stage = records.summary["validation"]
        trains = [r.label for r in records.runs("train", finished_only=True)]
    t1 = time.perf_counter()
    again = validate(wf, potential=stage["potential"])
    revalidate = time.perf_counter() - t1
    assert again["reference_cached"] == again["reference_total"]
    second = validate(wf, potential=trains[-2]) if len(trains) > 1 else None
    rows = stage["rows"]
    heldout = stage.get("heldout") or {}
    out = {
        "properties": stage["properties"],
        "within_tolerance": stage["within_tolerance"],
        "missed": stage["missed"],
        "a0_rel_err": rel(rows, "a0"),
        "B0_rel_err": rel(rows, "B0"),
        "C11_rel_err": rel(rows, "C11"),
        "C12_rel_err": rel(rows, "C12"),
        "C44_rel_err": rel(rows, "C44"),
        "sfe_rel_err": rel(rows, "sfe"),
        "sfe_mJ_m2": value(rows, "sfe"),
        "vacancy_formation_rel_err": rel(rows, "vacancy_formation"),
        "vacancy_migration_rel_err": rel(rows, "vacancy_migration"),
        "phonon_max_freq_rel_err": rel(rows, "phonon_max_freq"),
        "heldout_energy_rmse_mev_atom": round(1000 * heldout["energy_rmse_per_atom"], 4)
        if heldout.get("energy_rmse_per_atom") is not None
        else None,
        "heldout_force_rmse_mev_a": round(1000 * heldout["forces_rmse"], 3)
        if heldout.get("forces_rmse") is not None
        else None,
        "heldout_frames": heldout.get("n_frames"),
        "potential": stage["potential"],
        "validation_wall_s": stage["wall_s"],
        "revalidate_cached_wall_s": round(revalidate, 3),
        "second_potential": second["potential"] if second else None,
        "second_within_tolerance": second["within_tolerance"] if second else None,
        "second_reference_recalled": second["reference_cached"] if second else None,
        "second_reference_total": second["reference_total"] if second else None,
        "second_wall_s": second["wall_s"] if second else None,
        "demo_wall_s": round(demo_wall, 1),
    }
    if args.keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
