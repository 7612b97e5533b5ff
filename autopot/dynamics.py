"""The MD machinery shared by the MD simulation task (``autopot.simulate.md``) and the
active-learning exploration (``md_select``): one way to build an ASE integrator for an
ensemble, to move its temperature and pressure targets along a schedule, and to tell a
physical configuration from a broken one.

Depends on ASE only, so both the simulation layer and the MTP layer can use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms

ENSEMBLES = ("nve", "langevin", "nose_hoover", "berendsen", "npt")


def make_dynamics(
    atoms: Atoms,
    ensemble: str,
    *,
    timestep_fs: float,
    temperature_K: float,
    pressure_GPa: float = 0.0,
    friction_per_fs: float = 0.01,
    tdamp_fs: float = 100.0,
    pdamp_fs: float = 1000.0,
    compressibility_per_GPa: float = 0.01,
    rng: np.random.Generator | None = None,
) -> Any:
    """An ASE integrator: NVE (velocity Verlet), NVT (Langevin, Nosé–Hoover chain,
    Berendsen) or NPT (Berendsen), at the given starting targets."""
    from ase import units

    dt = timestep_fs * units.fs
    if ensemble == "nve":
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep=dt)
    if ensemble == "langevin":
        from ase.md.langevin import Langevin

        return Langevin(
            atoms,
            timestep=dt,
            temperature_K=temperature_K,
            friction=friction_per_fs / units.fs,
            rng=rng or np.random.default_rng(),
        )
    if ensemble == "nose_hoover":
        from ase.md.nose_hoover_chain import NoseHooverChainNVT

        return NoseHooverChainNVT(
            atoms, timestep=dt, temperature_K=temperature_K, tdamp=tdamp_fs * units.fs
        )
    if ensemble == "berendsen":
        from ase.md.nvtberendsen import NVTBerendsen

        return NVTBerendsen(
            atoms, timestep=dt, temperature_K=temperature_K, taut=tdamp_fs * units.fs
        )
    if ensemble == "npt":
        from ase.md.nptberendsen import NPTBerendsen

        return NPTBerendsen(
            atoms,
            timestep=dt,
            temperature_K=temperature_K,
            pressure_au=pressure_GPa * units.GPa,
            taut=tdamp_fs * units.fs,
            taup=pdamp_fs * units.fs,
            compressibility_au=compressibility_per_GPa / units.GPa,
        )
    raise ValueError(f"unknown ensemble {ensemble!r}; use one of {', '.join(ENSEMBLES)}")


def set_targets(dyn: Any, ensemble: str, temperature_K: float, pressure_GPa: float) -> None:
    """Move a running integrator's targets (a temperature or pressure ramp)."""
    from ase import units

    if ensemble != "nve" and hasattr(dyn, "set_temperature"):
        dyn.set_temperature(temperature_K=temperature_K)
    if ensemble == "npt":
        # NPTBerendsen.set_pressure is broken in ase 3.26 (wrong arity); its attribute is not
        dyn.pressure = pressure_GPa * units.GPa


def ramp(start: float, end: float, step: int, total: int) -> float:
    """The linear schedule's value at ``step`` of ``total``."""
    return start + (end - start) * (step / total if total else 0.0)


def min_distance(atoms: Atoms) -> float:
    """The shortest interatomic distance, periodic images included (inf for one atom
    alone in a large cell)."""
    from ase.neighborlist import neighbor_list

    if len(atoms) == 0:
        return float("inf")
    cutoff = 3.0
    while True:
        d = neighbor_list("d", atoms, cutoff)
        if len(d) or cutoff > 20:
            return float(d.min()) if len(d) else float("inf")
        cutoff *= 2


def cell_skew(atoms: Atoms, reference: Atoms) -> float:
    """How far a cell has sheared from ``reference``: the largest change of the cosine
    of a cell angle (0 for a cell that only stretched)."""

    def cosines(cell: np.ndarray) -> np.ndarray:
        lengths = np.linalg.norm(cell, axis=1)
        pairs = ((1, 2), (0, 2), (0, 1))
        return np.array([cell[i] @ cell[j] / (lengths[i] * lengths[j]) for i, j in pairs])

    if atoms.cell.rank != 3 or reference.cell.rank != 3:
        return 0.0
    return float(
        np.abs(cosines(np.asarray(atoms.cell)) - cosines(np.asarray(reference.cell))).max()
    )


def unphysical(
    atoms: Atoms, reference: Atoms, *, min_distance_A: float, max_cell_skew: float
) -> str:
    """Why a configuration must not reach a reference calculation ('' if it may): atoms
    closer than ``min_distance_A`` (a collapsed structure costs a VASP run that does not
    converge), or a cell sheared beyond ``max_cell_skew`` (an NPT run gone wrong)."""
    if min_distance_A > 0:
        d = min_distance(atoms)
        if d < min_distance_A:
            return f"atoms {d:.3f} A apart (< {min_distance_A:g} A)"
    if max_cell_skew > 0:
        skew = cell_skew(atoms, reference)
        if skew > max_cell_skew:
            return f"cell skewed by {skew:.3f} (> {max_cell_skew:g})"
    return ""
