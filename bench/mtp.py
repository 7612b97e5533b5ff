"""Benchmark of the motep MTP backend: training and grading throughput.

    python bench/mtp.py            # full: level-10 training on 100 configs, 10,000 candidates
    python bench/mtp.py --quick    # a few minutes less: smaller sets, fewer iterations

Training: a level-10 MTP on EMT Cu configurations of 32 atoms (LLS, then BFGS), errors on a
held-out set.  Grading: candidates of 54 atoms (rattled, strained fcc Cu) graded against the
active set of level-08 and level-16 MTPs (fitted by LLS on the same training set; timing
does not depend on fit quality).  The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ase.build import bulk  # noqa: E402
from ase.calculators.emt import EMT  # noqa: E402
from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402

from autopot.mtp import generate_untrained_mtp, get_backend  # noqa: E402
from autopot.mtp.backend import compute_errors  # noqa: E402

TYPES = {"Cu": 0}


def labelled(n: int, seed: int, rattle: float = 0.08, strain: float = 0.03) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
        eps = rng.uniform(-strain, strain, (3, 3))
        a.set_cell(a.cell @ (np.eye(3) + (eps + eps.T) / 2), scale_atoms=True)
        a.positions += rng.normal(0.0, rattle, a.positions.shape)
        a.calc = EMT()
        res = {
            "energy": a.get_potential_energy(),
            "forces": a.get_forces(),
            "stress": a.get_stress(),
        }
        a.calc = SinglePointCalculator(a, **res)
        out.append(a)
    return out


def candidates(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    base = bulk("Cu", "fcc", a=3.61).repeat((3, 3, 6))  # 54 atoms
    out = []
    for _ in range(n):
        a = base.copy()
        eps = rng.uniform(-0.04, 0.04, (3, 3))
        a.set_cell(a.cell @ (np.eye(3) + (eps + eps.T) / 2), scale_atoms=True)
        a.positions += rng.normal(0.0, 0.1, a.positions.shape)
        out.append(a)
    return out


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def cpu_seconds() -> float:
    """User+system CPU of this process and its finished children (grading workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def grade_speed(level: int, train: list, cands: list, work: Path) -> tuple[float, float, float]:
    """Wall ms and CPU ms per candidate (active set from the saved .als), max grade.

    CPU time is reported too because the wall figure depends on what else runs on the
    machine; on an idle 2-core machine wall ~ CPU / 2."""
    backend = get_backend("motep")
    generate_untrained_mtp(level, 1, cutoff=5.0, min_dist=2.0, path=work / f"{level}.mtp")
    res = backend.train(
        work / f"{level}.mtp", train, work / f"{level}_fit.mtp", atom_types=TYPES, max_iter=0
    )  # LLS only + active set
    c0, t0 = cpu_seconds(), time.perf_counter()
    grades = backend.calc_grade(res.potential, train, cands, TYPES)
    dt, dc = time.perf_counter() - t0, cpu_seconds() - c0
    return 1000.0 * dt / len(cands), 1000.0 * dc / len(cands), float(grades.max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sets, 100 BFGS iterations")
    ap.add_argument("--max-iter", type=int, default=None, help="BFGS iterations (default 1000)")
    ap.add_argument(
        "--grade-only",
        action="store_true",
        help="skip the level-10 training (train figures are null)",
    )
    args = ap.parse_args()
    n_train, n_test, n_cand = (30, 20, 1000) if args.quick else (100, 50, 10_000)
    max_iter = args.max_iter if args.max_iter is not None else (100 if args.quick else 1000)
    work = Path(tempfile.mkdtemp(prefix="autopot-bench-mtp-"))
    train = labelled(n_train, seed=1)
    test = labelled(n_test, seed=2)
    backend = get_backend("motep")

    train_s, e_rmse, f_rmse = None, None, None
    if not args.grade_only:
        generate_untrained_mtp(10, 1, cutoff=5.0, min_dist=2.0, path=work / "10.mtp")
        t0 = time.perf_counter()
        res = backend.train(
            work / "10.mtp",
            train,
            work / "10_trained.mtp",
            atom_types=TYPES,
            max_iter=max_iter,
            save_active_set=False,
        )
        train_s = round(time.perf_counter() - t0, 2)
        held = compute_errors(test, backend.calc_efs(res.potential, test, TYPES))
        e_rmse = round(1000 * held["energy_rmse_per_atom"], 3)
        f_rmse = round(1000 * held["forces_rmse"], 2)
        print(
            f"train: level 10, {n_train} x 32 atoms, {max_iter} BFGS iterations: {train_s} s;"
            f" training-set energy RMSE {1000 * res.errors['energy_rmse_per_atom']:.2f}"
            f" meV/atom, held-out {e_rmse} meV/atom, forces {f_rmse} meV/A",
            flush=True,
        )

    cands = candidates(n_cand, seed=3)
    load = os.getloadavg()[0]
    ms08, cpu08, g08 = grade_speed(8, train, cands, work)
    print(
        f"grade: level 08, {n_cand} x 54 atoms: {ms08:.3f} ms/config wall, {cpu08:.3f} ms CPU"
        f" (max grade {g08:.3g})",
        flush=True,
    )
    ms16, cpu16, g16 = grade_speed(16, train, cands, work)
    print(
        f"grade: level 16, {n_cand} x 54 atoms: {ms16:.3f} ms/config wall, {cpu16:.3f} ms CPU"
        f" (max grade {g16:.3g}); load average before grading {load:.2f}",
        flush=True,
    )
    print(
        json.dumps(
            {
                "train_s": train_s,
                "energy_rmse_mev_atom": e_rmse,
                "force_rmse_mev_a": f_rmse,
                "grade_ms_per_config": round(ms16, 3),
                "grade_ms_per_config_level08": round(ms08, 3),
                "grade_cpu_ms_per_config": round(cpu16, 3),
                "grade_cpu_ms_per_config_level08": round(cpu08, 3),
                "cores": os.cpu_count(),
                "load_average": round(load, 2),
                "peak_mem_mb": round(peak_mb(), 1),
                "quick": args.quick,
                "max_iter": max_iter,
            }
        )
    )


if __name__ == "__main__":
    main()
