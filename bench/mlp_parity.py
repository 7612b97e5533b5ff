"""MLIP-2 parity of the motep backend, on the recorded real-``mlp`` data of ../shared/data/mlp.

    python bench/mlp_parity.py            # ~1 min on 2 cores
    python bench/mlp_parity.py --data DIR

1. Errors: motep's energies/forces/stresses of ``out/pot06.mtp`` on ``test.cfg`` through
   :func:`autopot.mtp.error_report.compute_errors`, against every figure of
   ``out/calc-errors.stdout.txt`` (printed to 6 significant digits).
2. Grading at level 08: a level-08 MTP fitted on ``train.cfg``; 1,000 candidates made as
   bench/mtp.py makes them (54-atom strained, rattled fcc Cu); CPU time of
   ``calc_grade`` (including the active set built from ``train.cfg``) per candidate, in one
   process like the serial ``mlp`` anchor (1.1 ms; also the default below 2,000
   candidates), and with two worker processes.
3. Training at level 06: ``untrained_06.mtp`` on ``train.cfg`` with the default train_args
   (convergence-based stop), CPU time including child processes, BFGS iterations, force
   RMSE on ``test.cfg`` (anchor, real mlp on this machine: 29 s CPU, 441 iterations,
   1.70 meV/A).

CPU times, not wall: the machine is shared.  The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autopot.mtp import generate_untrained_mtp  # noqa: E402
from autopot.mtp.backend import MotepBackend  # noqa: E402
from autopot.mtp.cfg import read_cfg  # noqa: E402
from autopot.mtp.error_report import compute_errors, parse_mlp_errors  # noqa: E402

log = logging.getLogger("bench.mlp_parity")
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mlp"
TYPES = "Cu=0"


def cpu_seconds() -> float:
    """User+system CPU of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def candidates(n: int, seed: int) -> list:
    """bench/mtp.py's candidates: 54-atom fcc Cu, strained up to 4 %, rattled by 0.1 A."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    base = bulk("Cu", "fcc", a=3.61).repeat((3, 3, 6))
    out = []
    for _ in range(n):
        a = base.copy()
        eps = rng.uniform(-0.04, 0.04, (3, 3))
        a.set_cell(a.cell @ (np.eye(3) + (eps + eps.T) / 2), scale_atoms=True)
        a.positions += rng.normal(0.0, 0.1, a.positions.shape)
        out.append(a)
    return out


def errors_parity(data: Path) -> tuple[bool, float]:
    text = (data / "out" / "calc-errors.stdout.txt").read_text()
    recorded = parse_mlp_errors(text)
    test = read_cfg(data / "test.cfg", TYPES)
    ours = compute_errors(
        test, MotepBackend(n_jobs=1).calc_efs(data / "out" / "pot06.mtp", test, TYPES)
    )
    match = all(f"{ours[k]:.6g}" == f"{v:.6g}" for k, v in recorded.items())
    rel = max(abs(ours[k] - v) / abs(v) for k, v in recorded.items() if v)
    log.info(
        "errors: %d figures of calc-errors, %s to print precision, max rel diff %.2e",
        len(recorded),
        "all equal" if match else "NOT all equal",
        rel,
    )
    return match, rel


def grade_cpu(data: Path, work: Path, n_jobs: int | None) -> float:
    pot = work / "08_fit.mtp"
    if not pot.exists():
        generate_untrained_mtp(
            8, 1, cutoff=5.0, min_dist=2.0, radial_basis_size=8, path=work / "08.mtp"
        )
        MotepBackend(n_jobs=1).train(
            work / "08.mtp",
            data / "train.cfg",
            pot,
            atom_types=TYPES,
            max_iter=100,
            save_active_set=False,
        )
    cands = candidates(1000, seed=3)
    train = read_cfg(data / "train.cfg", TYPES)
    backend = MotepBackend(n_jobs=n_jobs)
    c0, t0 = cpu_seconds(), time.perf_counter()
    grades = backend.calc_grade(pot, train, cands, TYPES)  # builds the active set too
    dc, dt = cpu_seconds() - c0, time.perf_counter() - t0
    log.info(
        "grade level 08, 1000 x 54 atoms, n_jobs=%s: %.3f ms CPU, %.3f ms wall per "
        "configuration (max grade %.3g)",
        n_jobs,
        1000 * dc / 1000,
        1000 * dt / 1000,
        grades.max(),
    )
    return dc  # seconds for 1000 = ms per configuration


def train_level06(data: Path, work: Path) -> tuple[float, float, int | None]:
    backend = MotepBackend()
    c0, t0 = cpu_seconds(), time.perf_counter()
    res = backend.train(
        data / "untrained_06.mtp", data / "train.cfg", work / "06_fit.mtp", atom_types=TYPES
    )
    dc, dt = cpu_seconds() - c0, time.perf_counter() - t0
    test = read_cfg(data / "test.cfg", TYPES)
    held = compute_errors(test, MotepBackend(n_jobs=1).calc_efs(res.potential, test, TYPES))
    log.info(
        "train level 06 on train.cfg: %.1f s CPU, %.1f s wall, %s iterations, test "
        "force RMSE %.3f meV/A",
        dc,
        dt,
        res.iterations,
        1000 * held["forces_rmse"],
    )
    return dc, 1000 * held["forces_rmse"], res.iterations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder of the recorded mlp data")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if not (args.data / "out" / "calc-errors.stdout.txt").is_file():
        sys.exit(f"{args.data}: no recorded MLIP-2 outputs (out/calc-errors.stdout.txt)")
    work = Path(tempfile.mkdtemp(prefix="autopot-bench-mlp-"))
    load = os.getloadavg()[0]
    match, rel = errors_parity(args.data)
    grade_serial = grade_cpu(args.data, work, n_jobs=1)
    grade_2proc = grade_cpu(args.data, work, n_jobs=2)
    train_s, f_rmse, iters = train_level06(args.data, work)
    print(
        json.dumps(
            {
                "errors_match_mlp": match,
                "max_rel_diff_errors": float(f"{rel:.3g}"),
                "grade_cpu_ms_per_config_level08": round(grade_serial, 3),
                "grade_cpu_ms_per_config_level08_2proc": round(grade_2proc, 3),
                "train_cpu_s_level06": round(train_s, 2),
                "train_test_force_rmse_mev_a": round(f_rmse, 3),
                "train_iterations": iters,
                "cores": os.cpu_count(),
                "load_average": round(load, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
