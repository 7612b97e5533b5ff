"""The AutoPot paper's production protocols at full size, and where their wall time goes.

    python bench/paper_scale.py --protocol W                 # 2 x 10,000 candidates, level 16
    python bench/paper_scale.py --protocol MoTa [--no-cross-md-selection]

Runs the real CLI (``autopot orchestrator start``, local executor, embedded database) in a
scratch directory with a cheap reference standing in for VASP: the Zhou–Johnson–Wadley
(2004) EAM (autopot/reference/zhou2004.py) covers W, Mo and Ta.

* **W** (paper: 2 x 10,000 candidates, 54-atom bulk and 72-atom 1/4[111] stacking-fault
  cells, strain +-2 %, Gaussian perturbation sigma 0.02 A, level-16 MTP, 5 A cutoff, 20
  initial configurations, thresholds down to 2, then MD from two configurations).
* **MoTa** (paper: 2 x 30,000 candidates with Dirichlet compositions, then MD on *each*
  of the training configurations at once). Same shape: two species, Dirichlet
  compositions, level 16, MD on every training configuration after pre-selection (more
  than 200 MDs in flight), a held-out set scored at the end. ``--candidates`` is per set.

Wall time is split by sweeping over time: at each instant it is shared equally among the
task processes running then, each counted under what it is doing (``work_<kind>_spans``
pushed by the tasks: reference, grade, train, md) or ``other`` (process start-up, imports,
database, files); an instant with no task running is the orchestrator's (``other``).
Memory is the peak of the summed RSS of the whole process tree, sampled every 0.25 s.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("reference", "grade", "train", "md")

PROTOCOLS: dict[str, dict[str, Any]] = {
    "W": {
        "species": ("W",),
        "a": 3.165,
        "candidates": 10_000,
        "n_initial": 20,
        "level": 16,
        "bulk_repeat": (3, 3, 3),  # 54 atoms
        "sf_repeat": (2, 3, 2),  # 72 atoms
        "grades": [10000, 1000, 100, 10, 2],
        "md_temperature": 1000.0,
        "md_steps": 1000,
        "grade_every": 1,
        "train_args": {"max_iter": 100, "conv_window": 20},
        "max_iterations": 10,
        "md_from": "two",
    },
    "MoTa": {
        "species": ("Mo", "Ta"),
        "a": 3.147,  # Mo's; alloyed() scales each cell to its composition
        # smaller than the paper (2 x 30,000, level 16, 54/72 atoms) so that both variants
        # (with and without cross-MD selection) run on 2 cores within a working session;
        # the shape is kept: two species, Dirichlet compositions, MD on every training
        # configuration after pre-selection, > 200 MDs in flight (130 initial + selected)
        "candidates": 1_000,
        "n_initial": 130,
        "level": 10,
        "bulk_repeat": (2, 2, 2),  # 16 atoms
        "sf_repeat": (1, 2, 2),  # 24 atoms
        "grades": [1000, 10, 2],
        "md_temperature": 1000.0,
        "md_steps": 100,
        "grade_every": 5,
        "train_args": {"max_iter": 100, "conv_window": 20},
        "max_iterations": 3,
        "md_from": "training_set",
    },
}


# ---------------------------------------------------------------------- structures
def bcc_bulk(symbol: str, a: float, repeat: tuple[int, int, int] = (3, 3, 3)):
    """Bulk: the conventional bcc cell repeated (3x3x3: 54 atoms)."""
    from ase.build import bulk

    return bulk(symbol, "bcc", a=a, cubic=True).repeat(repeat)


def bcc_stacking_fault(symbol: str, a: float, repeat: tuple[int, int, int] = (2, 3, 2)):
    """(1-10) generalized stacking fault at 1/4[111]: x=[111], y=[1-10], z=[11-2] (2x3x2
    of the 6-atom cell: 72 atoms, six (1-10) planes); the periodic image across y is
    shifted by a*sqrt(3)/4 along x."""
    from ase.lattice.cubic import BodyCenteredCubic

    atoms = BodyCenteredCubic(
        symbol=symbol, latticeconstant=a, directions=[[1, 1, 1], [1, -1, 0], [1, 1, -2]]
    ).repeat(repeat)
    cell = atoms.cell.array.copy()
    cell[1, 0] += a * np.sqrt(3.0) / 4.0
    atoms.set_cell(cell, scale_atoms=False)
    atoms.wrap()
    return atoms


def strained_perturbed(base, n: int, rng: np.random.Generator, strain=0.02, sigma=0.02):
    """``n`` copies: random symmetric strain with entries in +-strain (autopot.sampling),
    then Gaussian displacements of sigma (A), as the paper's candidates."""
    from autopot.sampling import strained

    out = []
    for _ in range(n):  # strain and displacements drawn per copy, in that order
        (atoms,) = strained(base, max_strain=strain, n=1, rng=rng)
        atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
        out.append(atoms)
    return out


def atom_types_of(species: tuple[str, ...]) -> str:
    """``W=0`` / ``Mo=0,Ta=1``: MTP types in the order the protocol lists its species."""
    return ",".join(f"{s}={i}" for i, s in enumerate(species))


LATTICE = {"W": 3.165, "Mo": 3.147, "Ta": 3.303}  # A, experiment


def alloyed(images: list, species: tuple[str, ...], rng: np.random.Generator) -> list:
    """Dirichlet compositions (alpha=1: the whole simplex), random site occupation, and the
    cell scaled by Vegard's law from the first species' lattice constant."""
    if len(species) == 1:
        return images
    for atoms in images:
        frac = rng.dirichlet([1.0] * len(species))
        counts = np.floor(frac * len(atoms)).astype(int)
        counts[0] += len(atoms) - counts.sum()
        symbols = np.repeat(np.array(species), counts)
        rng.shuffle(symbols)
        atoms.set_chemical_symbols(list(symbols))
        a_mix = float(np.dot(counts, [LATTICE[s] for s in species])) / len(atoms)
        atoms.set_cell(atoms.cell.array * a_mix / LATTICE[species[0]], scale_atoms=True)
    return images


def generate_inputs(p: dict[str, Any], n: int, out: Path, seed: int = 2026) -> dict[str, Any]:
    """Every input file of the protocol, deterministic in ``seed``."""
    from autopot.mtp.cfg import write_cfg
    from autopot.mtp.generator import generate_untrained_mtp
    from autopot.reference.zhou2004 import write_setfl

    rng = np.random.default_rng(seed)
    species = p["species"]
    atom_types = atom_types_of(species)
    out.mkdir(parents=True, exist_ok=True)
    base_bulk = bcc_bulk(species[0], p["a"], p["bulk_repeat"])
    base_sf = bcc_stacking_fault(species[0], p["a"], p["sf_repeat"])
    files: dict[str, Any] = {"atom_types": atom_types}
    sets = []
    for name, base in (("bulk", base_bulk), ("sf", base_sf)):
        path = out / f"candidates_{name}.cfg"
        write_cfg(path, alloyed(strained_perturbed(base, n, rng), species, rng), atom_types)
        sets.append(path)
    files["candidates"] = sets
    half = p["n_initial"] // 2
    initial = strained_perturbed(base_bulk, half, rng) + strained_perturbed(
        base_sf, p["n_initial"] - half, rng
    )
    files["initial"] = out / "initial.cfg"
    write_cfg(files["initial"], alloyed(initial, species, rng), atom_types)
    if p["md_from"] == "two":
        files["md"] = out / "md_start.cfg"
        starts = [base_bulk.copy(), base_sf.copy()]
        write_cfg(files["md"], alloyed(starts, species, rng), atom_types)
    files["eam"] = write_setfl(list(species), out / f"{''.join(species)}.eam.alloy")
    files["potential"] = out / f"untrained_{p['level']:02d}.mtp"
    generate_untrained_mtp(
        p["level"], len(species), cutoff=5.0, min_dist=2.0, path=files["potential"]
    )
    # held-out: snapshots of reference (EAM) Langevin MD at the MD temperature from both
    # cells, which the workflow never sees
    n_comp = 1 if len(species) == 1 else 4  # alloys: eight compositions, 5 snapshots each
    files["held_out"] = out / "held_out.cfg"
    write_cfg(
        files["held_out"],
        reference_md(
            alloyed([c.copy() for _ in range(n_comp) for c in (base_bulk, base_sf)], species, rng),
            files["eam"],
            p["md_temperature"],
            n=20 // n_comp,
        ),
        atom_types,
    )
    return files


def reference_md(starts: list, eam: Path, temperature: float, n: int = 20, every: int = 10):
    """``n`` snapshots per start from Langevin MD with the reference (2 fs steps)."""
    from ase import units
    from ase.calculators.eam import EAM
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    snaps = []
    for k, atoms in enumerate(starts):
        atoms.calc = EAM(potential=str(eam))
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=np.random.default_rng(k))
        md = Langevin(
            atoms,
            2 * units.fs,
            temperature_K=temperature,
            friction=0.02,
            rng=np.random.default_rng(k),
        )
        for _ in range(n):
            md.run(every)
            snap = atoms.copy()
            snap.calc = None
            snaps.append(snap)
    return snaps


# ---------------------------------------------------------------------- measurement
class TreeMemory(threading.Thread):
    """Peak of the summed RSS of a process and all its descendants (from /proc)."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.peak_kb, self.done = pid, every, 0, False

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat") as fh:
                        ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        return tree

    def run(self) -> None:
        while not self.done:
            total = 0
            for pid in self._tree():
                try:
                    with open(f"/proc/{pid}/status") as fh:
                        for line in fh:
                            if line.startswith("VmRSS:"):
                                total += int(line.split()[1])
                except OSError:
                    pass
            self.peak_kb = max(self.peak_kb, total)
            time.sleep(self.every)


def breakdown(runs: list[dict[str, Any]], t0: float, t1: float) -> dict[str, float]:
    """Split [t0, t1] among the lanes active at each instant (see the module docstring)."""
    events: list[tuple[float, int, str]] = []  # (time, +1/-1, label)
    for r in runs:
        start, end = r.get("started"), r.get("ended")
        if start is None or end is None:
            continue
        start, end = max(start, t0), min(end, t1)
        if end <= start:
            continue
        spans = sorted(
            (max(a, start), min(b, end), kind)
            for kind in KINDS
            for a, b in r.get(f"work_{kind}_spans") or []
            if min(b, end) > max(a, start)
        )
        cursor = start
        for a, b, kind in spans:
            if a > cursor:
                events += [(cursor, +1, "other"), (a, -1, "other")]
            events += [(a, +1, kind), (b, -1, kind)]
            cursor = max(cursor, b)
        if end > cursor:
            events += [(cursor, +1, "other"), (end, -1, "other")]
    events.sort(key=lambda e: (e[0], e[1]))
    totals = {k: 0.0 for k in (*KINDS, "other")}
    active: dict[str, int] = {}
    now = t0
    for when, delta, label in events + [(t1, 0, "")]:
        lanes = sum(active.values())
        if when > now:
            if lanes == 0:
                totals["other"] += when - now  # the orchestrator alone
            else:
                for kind, count in active.items():
                    totals[kind] += (when - now) * count / lanes
            now = when
        if delta:
            active[label] = active.get(label, 0) + delta
            if not active[label]:
                del active[label]
    return totals


def collect_runs(motoko: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every run's times and work spans, and the workflow summary, read through the store."""
    from autopot.store.workflow_records import WorkflowRecords

    records = WorkflowRecords.open(motoko)
    try:
        rows = []
        for task in ("select", "md_select", "sp_calc", "train"):
            for run in records.runs(task):
                q = dict(run.quantities)
                rows.append(
                    {
                        "task": task,
                        "state": run.state,
                        "started": run.started,
                        "ended": run.ended,
                        **{k: v for k, v in q.items() if k.startswith("work_")},
                        **{k: q.get(k) for k in ("n_selected", "ts_size", "n_collected")},
                    }
                )
        return rows, records.summary
    finally:
        records.close()


def held_out_reference(held_out: Path, eam: Path, atom_types: str) -> list:
    """The held-out configurations with their reference energies and forces."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from autopot.mtp.cfg import read_cfg
    from autopot.reference import compute_single_point

    images = []
    for atoms in read_cfg(held_out, atom_types):
        ref = compute_single_point(
            atoms, {"calculator": "eam", "potential": str(eam)}, directory=held_out.parent
        )
        atoms.calc = SinglePointCalculator(
            atoms, energy=ref.get_potential_energy(), forces=ref.get_forces()
        )
        images.append(atoms)
    return images


def held_out_errors(potential: Path, images: list, atom_types: str) -> dict[str, float]:
    """Energy and force RMSE of an MTP on configurations the workflow never saw."""
    from autopot.mtp.backend import MotepBackend
    from autopot.mtp.error_report import compute_errors

    predicted = MotepBackend(n_jobs=1).calc_efs(potential, images, atom_types)
    err = compute_errors(images, predicted)
    return {
        "held_out_energy_rmse_mev_atom": round(1000 * err["energy_rmse_per_atom"], 3),
        "held_out_force_rmse_mev_a": round(1000 * err["forces_rmse"], 2),
    }


def iteration_table(summary: dict[str, Any], images: list, atom_types: str) -> list[dict]:
    """Per training: stage, iteration, training-set size, reference calls so far, and the
    held-out errors of its potential (what a comparison at equal iterations needs)."""
    rows, calls = [], 0
    for it in summary.get("iterations") or []:
        calls += int(it.get("n_added") or 0)
        row = {
            "train": it.get("train"),
            "stage": it.get("stage"),
            "iteration": it.get("iteration"),
            "ts_size": it.get("ts_size"),
            "reference_calls": calls,
        }
        if it.get("potential") and Path(it["potential"]).is_file():
            row.update(held_out_errors(Path(it["potential"]), images, atom_types))
        rows.append(row)
    return rows


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="W")
    parser.add_argument("--candidates", type=int, help="candidates per set (2 sets)")
    parser.add_argument("--level", type=int)
    parser.add_argument("--md-steps", type=int)
    parser.add_argument("--train-iterations", type=int)
    parser.add_argument("--no-cross-md-selection", action="store_true")
    parser.add_argument(
        "--db",
        choices=("socket", "none"),
        default="socket",
        help="the local executor's db option: none = tasks never connect, the engine "
        "ingests their outcome files",
    )
    parser.add_argument("--max-iterations", type=int, help="MD iterations at most")
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    parser.add_argument(
        "--held-out", type=Path, help="--report: score the potentials on this .cfg instead"
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="no run: the figures of the workflow already in --workdir (wall time from its "
        "first run's start to its last run's end; no memory figure)",
    )
    args = parser.parse_args()
    p = dict(PROTOCOLS[args.protocol])
    for key in ("candidates", "level", "md_steps", "max_iterations"):
        if getattr(args, key) is not None:
            p[key] = getattr(args, key)
    if args.train_iterations is not None:
        p["train_args"] = {**p["train_args"], "max_iter": args.train_iterations}
    work = args.workdir or Path(tempfile.mkdtemp(prefix=f"paper_{args.protocol}_"))
    if args.report:
        if args.workdir is None:
            parser.error("--report needs --workdir")
        return report(args, p, work)
    work.mkdir(parents=True, exist_ok=True)
    for name in ("tasks", "workflow"):
        shutil.rmtree(work / name, ignore_errors=True)
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    text = (ROOT / "motoko.yaml").read_text()
    if args.db != "socket":
        local = "executor: {name: local}"
        if local not in text:
            raise SystemExit(f"motoko.yaml has no {local!r} line to give db: {args.db}")
        text = text.replace(local, f"executor: {{name: local, db: {args.db}}}")
    (work / "motoko.yaml").write_text(text)

    g0 = time.perf_counter()
    files = generate_inputs(p, p["candidates"], work / "inputs")
    generate_s = time.perf_counter() - g0
    cmd = [
        sys.executable, "-m", "autopot.cli", "-q", "orchestrator", "start",
        "-c", str(work / "motoko.yaml"),
        "--atom-types", files["atom_types"],
        "--potential", str(files["potential"]),
        "--training-set", str(files["initial"]),
        "--calculate-ts",
        "--select", "--grades", *[str(g) for g in p["grades"]],
        "--training-candidate-set", *[str(c) for c in files["candidates"]],
        "--md-select",
        "--calculator", "eam", "--pot-fname", str(files["eam"]),
        "--md-temperature", str(p["md_temperature"]),
        "--md-steps", str(p["md_steps"]),
        "--train-args", json.dumps(p["train_args"]),
        "--max-iterations", str(p["max_iterations"]),
        "--select-args", json.dumps({"grade_every": p["grade_every"]}),
        "--no-validate",
    ]  # fmt: skip
    if "md" in files:
        cmd += ["--md-configurations", str(files["md"])]
    if args.no_cross_md_selection:
        cmd += ["--no-cross-md-selection"]
    t0 = time.time()
    with open(work / "orchestrator.out", "w") as out:
        proc = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT)
        memory = TreeMemory(proc.pid)
        memory.start()
        try:
            code = proc.wait(timeout=args.timeout)
        finally:
            memory.done = True
    t1 = time.time()
    figures = figures_of(args, p, work, files, t0, t1)
    figures.update(
        peak_rss_mb=round(memory.peak_kb / 1024, 1),
        exit_code=code,
        generate_inputs_s=round(generate_s, 1),
        db=args.db,
    )
    print(f"workdir {work}; orchestrator exit {code}; wall {t1 - t0:.0f} s", file=sys.stderr)
    print(json.dumps(figures))


def report(args: argparse.Namespace, p: dict[str, Any], work: Path) -> None:
    """The figures of an existing workdir's workflow (``--report``)."""
    inputs = work / "inputs"
    species = p["species"]
    files = {
        "atom_types": atom_types_of(species),
        "held_out": args.held_out or inputs / "held_out.cfg",
        "eam": inputs / f"{''.join(species)}.eam.alloy",
    }
    figures = figures_of(args, p, work, files)
    figures["from_records"] = True
    print(json.dumps(figures))


def figures_of(
    args: argparse.Namespace,
    p: dict[str, Any],
    work: Path,
    files: dict[str, Any],
    t0: float | None = None,
    t1: float | None = None,
) -> dict[str, Any]:
    """The JSON figures of the workflow in ``work``, over [t0, t1] (default: its first
    run's start to its last run's end)."""
    runs, summary = collect_runs(work / "motoko.yaml")
    if t0 is None or t1 is None:
        t0 = min(r["started"] for r in runs if r["started"] is not None)
        t1 = max(r["ended"] for r in runs if r["ended"] is not None)
    parts = breakdown(runs, t0, t1)
    wall = t1 - t0
    n_initial = p["n_initial"]
    figures: dict[str, Any] = {
        "protocol": args.protocol,
        "candidates": 2 * p["candidates"],
        "level": p["level"],
        "selected": (summary.get("iterations") or [{}])[-1].get("ts_size", 0) - n_initial
        if summary.get("iterations")
        else 0,
        "reference_calls": summary.get("reference_calls"),
        "wall_s": round(wall, 1),
        "grade_s": round(parts["grade"], 1),
        "train_s": round(parts["train"], 1),
        "md_s": round(parts["md"], 1),
        "reference_s": round(parts["reference"], 1),
        "other_s": round(parts["other"], 1),
        "other_fraction": round(parts["other"] / wall, 4) if wall else None,
        "peak_rss_mb": None,
        "converged": bool(summary.get("converged")),
        "runs": {t: sum(1 for r in runs if r["task"] == t) for t in ("select", "md_select", "sp_calc", "train")},
        "md_in_flight_max": max(
            (len(it.get("md_select") or []) for it in summary.get("iterations") or []), default=0
        ),
        "cross_md_selection": not args.no_cross_md_selection,
        "train_args": p["train_args"],
        "cross_md": [it.get("cross_md") for it in summary.get("iterations") or [] if it.get("cross_md")],
    }  # fmt: skip
    if summary.get("potential"):
        images = held_out_reference(files["held_out"], files["eam"], files["atom_types"])
        figures.update(held_out_errors(Path(summary["potential"]), images, files["atom_types"]))
        figures["iterations"] = iteration_table(summary, images, files["atom_types"])
    return figures


if __name__ == "__main__":
    main()
