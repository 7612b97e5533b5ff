"""Data efficiency of the AutoPot loop versus random selection, on the embedded demo.

    python bench/data_efficiency.py [--preset cu] [--heldout-temperature 900]

1. Runs the demo workflow (default preset ``cu``) end to end through the CLI in a
   temporary copy of the repository's workflow; its wall time is ``demo_wall_s``.
2. Held-out test set: snapshots of an EMT Langevin MD of fcc Cu at a higher
   temperature than the workflow's MD used.
3. Errors of the final active-learning potential on it, and of a potential trained (same
   level, same optimizer settings) on the initial set plus the *same number* of
   reference calculations drawn at random from the demo's candidate pool.

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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def heldout_trajectory(temperature: float, n: int, seed: int = 7) -> list:
    """EMT Langevin MD of a 2x2x2 fcc Cu cell; every 20th step after equilibration."""
    from ase import units
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    atoms.calc = EMT()
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dyn = Langevin(
        atoms, 2 * units.fs, temperature_K=temperature, friction=0.02 / units.fs, rng=rng
    )
    dyn.run(200)
    frames = []
    for _ in range(n):
        dyn.run(20)
        snap = atoms.copy()
        snap.calc = SinglePointCalculator(
            snap,
            energy=atoms.get_potential_energy(),
            forces=atoms.get_forces(),
            stress=atoms.get_stress(),
        )
        frames.append(snap)
    return frames


def errors(pot: Path, frames: list, atom_types: str) -> tuple[float, float]:
    """Energy RMSE (meV/atom) and force-component RMSE (meV/Å) of ``pot`` on ``frames``."""
    from autopot.mtp.backend import get_backend

    pred = get_backend().calc_efs(pot, frames, atom_types)
    de = [
        (p.get_potential_energy() - r.get_potential_energy()) / len(r)
        for p, r in zip(pred, frames, strict=True)
    ]
    df = np.concatenate(
        [(p.get_forces() - r.get_forces()).ravel() for p, r in zip(pred, frames, strict=True)]
    )
    return float(np.sqrt(np.mean(np.square(de))) * 1000), float(np.sqrt(np.mean(df**2)) * 1000)


def run_demo(preset: str, workdir: Path) -> tuple[dict, float]:
    for name in ("tasks", "workflow"):
        shutil.copytree(ROOT / name, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "motoko.yaml", workdir / "motoko.yaml")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "autopot.cli", "orchestrator", "start", "--preset", preset],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    print(proc.stdout[-3000:])
    if proc.returncode != 0:
        raise SystemExit(f"demo failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    from autopot.engine.workflow import Workflow

    with Workflow(workdir / "motoko.yaml", read_only=True) as wf:
        return wf.summary, wall


def random_baseline(workdir: Path, summary: dict, n_calls: int, seed: int = 0) -> Path:
    """Initial set + ``n_calls - n_initial`` random candidates (EMT), same training settings."""
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    from autopot.mtp.backend import get_backend
    from autopot.mtp.cfg import read_cfg, write_cfg

    demo = workdir / "autopot-workflow" / "inputs" / "default" / "demo"
    at = summary["settings"]["atom_types"]
    initial = read_cfg(demo / "initial_ts.cfg", at)
    pool = read_cfg(demo / "candidates.cfg", at)
    rng = np.random.default_rng(seed)
    picks = [
        pool[i]
        for i in rng.choice(
            len(pool), size=min(len(pool), max(0, n_calls - len(initial))), replace=False
        )
    ]
    labelled = []
    for atoms in [*initial, *picks]:
        atoms = atoms.copy()
        atoms.calc = EMT()
        e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f, stress=s)
        labelled.append(atoms)
    write_cfg(workdir / "random_ts.cfg", labelled, at)
    pot = sorted(demo.glob("untrained_*.mtp"))[0]
    out = workdir / "random.mtp"
    get_backend().train(
        pot, workdir / "random_ts.cfg", out, atom_types=at, **summary["settings"]["train_args"]
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cu")
    parser.add_argument("--heldout-temperature", type=float, default=900.0)
    parser.add_argument("--heldout-frames", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        summary, wall = run_demo(args.preset, workdir)
        at = summary["settings"]["atom_types"]
        frames = heldout_trajectory(args.heldout_temperature, args.heldout_frames)
        al_e, al_f = errors(Path(summary["potential"]), frames, at)
        n_calls = int(summary["reference_calls"])
        rnd_e, rnd_f = errors(random_baseline(workdir, summary, n_calls), frames, at)
    figures = {
        "reference_calls": n_calls,
        "al_energy_rmse_mev_atom": round(al_e, 3),
        "al_force_rmse_mev_a": round(al_f, 2),
        "random_energy_rmse_mev_atom": round(rnd_e, 3),
        "random_force_rmse_mev_a": round(rnd_f, 2),
        "demo_wall_s": round(wall, 1),
        "heldout_temperature_K": args.heldout_temperature,
        "demo_md_temperature_K": summary["settings"]["md_args"]["temperature_K"],
        "converged": summary["converged"],
    }
    print(
        f"held-out EMT MD at {args.heldout_temperature:g} K ({args.heldout_frames} frames), "
        f"{n_calls} reference calculations each:"
    )
    print(f"  active learning: energy RMSE {al_e:.3f} meV/atom, force RMSE {al_f:.1f} meV/Å")
    print(f"  random picks:    energy RMSE {rnd_e:.3f} meV/atom, force RMSE {rnd_f:.1f} meV/Å")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
