"""A leaderboard of three models on the fcc suite against EMT: two MTP levels and EMT itself.

    python bench/benchmark.py [--levels 6 8] [--keep DIR]

1. Trains one MTP per level with the embedded demo (``--preset cu-quick --level N
   --no-validate``) in temporary copies of the repository's workflow.
2. Registers them in a models.yaml (``$AUTOPOT_MODELS``) as ``mtp-lNN`` and runs
   ``autopot benchmark --models mtp-l06,mtp-l08,emt --reference emt`` into one store.
3. Runs the same benchmark again: every simulation is recalled (``cached_wall_s``).

EMT against itself must pass every property with zero error (the same runs): a check of
the machinery, not of a model. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train(workdir: Path, level: int) -> tuple[str, float]:
    for name in ("tasks", "workflow"):
        shutil.copytree(ROOT / name, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "motoko.yaml", workdir / "motoko.yaml")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autopot.cli",
            "orchestrator",
            "start",
            "--preset",
            "cu-quick",
            "--level",
            str(level),
            "--no-validate",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"level {level} demo failed ({proc.returncode}): {proc.stderr[-2000:]}")
    from autopot.store.workflow_records import WorkflowRecords

    with WorkflowRecords.open(workdir / "autopot-workflow") as records:
        return records.last_train().label, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[6, 8])
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="autopot-bench-benchmark-"))
    work.mkdir(parents=True, exist_ok=True)
    registry = []
    train_walls = {}
    for level in args.levels:
        label, wall = train(work / f"l{level:02d}", level)
        train_walls[f"mtp-l{level:02d}"] = round(wall, 1)
        registry.append(
            f"mtp-l{level:02d}:\n"
            f"  calculator: {{calculator: {label}, workflow: l{level:02d}/autopot-workflow}}\n"
            f"  family: MTP (level {level:02d}, motep)\n"
            "  training_data: autopot cu-quick demo, EMT reference\n"
            "  license: CC-BY-4.0\n"
        )
    (work / "models.yaml").write_text("".join(registry))
    env = {**os.environ, "AUTOPOT_MODELS": str(work / "models.yaml")}
    models = ",".join([*(f"mtp-l{lv:02d}" for lv in args.levels), "emt"])
    command = [
        sys.executable,
        "-m",
        "autopot.cli",
        "benchmark",
        "--models",
        models,
        "--reference",
        "emt",
        "--store",
        str(work / "store"),
        "-o",
        str(work / "board"),
    ]
    walls = []
    for _ in range(2):
        t0 = time.perf_counter()
        proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            sys.exit(f"benchmark failed ({proc.returncode}): {proc.stderr[-2000:]}")
        sys.stderr.write(proc.stdout)
    board = json.loads((work / "board" / "leaderboard.json").read_text())
    out = {
        "models": {
            m["name"]: {
                "rank": m["rank"],
                "within_tolerance": m["within_tolerance"],
                "properties": m["properties"],
                "missed": m["missed"],
                "mean_rel_err": None if m["mean_rel_err"] is None else round(m["mean_rel_err"], 5),
                "heldout_force_rmse_mev_a": None
                if m["values"].get("heldout_force_rmse", {}).get("value") is None
                else round(m["values"]["heldout_force_rmse"]["value"], 3),
            }
            for m in board["models"]
        },
        "pass_counts": {m["name"]: m["within_tolerance"] for m in board["models"]},
        "order": [m["name"] for m in board["models"]],
        "reference_cached_second_run": board["reference_cached"],
        "reference_total": board["reference_total"],
        "benchmark_wall_s": round(walls[0], 1),
        "cached_wall_s": round(walls[1], 1),
        "train_wall_s": train_walls,
        "leaderboard": str(work / "board" / "leaderboard.html") if args.keep else None,
    }
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
