"""EOS: full relaxation, then energies at N volumes with positions relaxed at fixed cell,
and a Birch–Murnaghan fit (ASE's ``EquationOfState``).

The volumes are V0·(1 + s) for s evenly spaced in [-max_strain, max_strain] (as MLIP
Arena's EOS), cells scaled isotropically from the relaxed one. The pieces are separate
functions so that the recorded EOS can run each relaxation as an OPT task of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from autopot.simulate.common import (
    EV_A3_TO_GPA,
    SimulationError,
    check_number,
    check_relax,
    merge,
    relax,
    relax_as,
)

if TYPE_CHECKING:
    from ase import Atoms

DEFAULTS: dict[str, Any] = {
    "n_points": 11,
    "max_strain": 0.1,
    "optimizer": "BFGS",
    "filter": "FrechetCell",
    "fmax": 0.005,
    "steps": 1000,
    "symmetry": True,
}


def check(params: dict[str, Any]) -> dict[str, Any]:
    p = merge(DEFAULTS, params)
    check_number("n_points", p["n_points"], minimum=5, integer=True)
    check_number("max_strain", p["max_strain"], minimum=0, strict=True, maximum=0.5)
    check_relax("", p["optimizer"], p["fmax"], p["steps"], p["filter"])
    return p


def strained(relaxed: Atoms, n_points: int, max_strain: float) -> list[Atoms]:
    """Copies of ``relaxed`` at volumes V0·(1 + s), s in linspace(-max_strain, max_strain)."""
    out = []
    for s in np.linspace(-max_strain, max_strain, n_points):
        a = relaxed.copy()
        a.set_cell(relaxed.cell.array * (1.0 + s) ** (1.0 / 3.0), scale_atoms=True)
        out.append(a)
    return out


def fit(volumes: list[float], energies: list[float], natoms: int) -> dict[str, Any]:
    """Birch–Murnaghan V0, E0, B0 (GPa), B0' from (volume, energy) points."""
    from ase.eos import EquationOfState

    eos = EquationOfState(list(volumes), list(energies), eos="birchmurnaghan")
    try:
        v0, e0, b0 = eos.fit()
    except Exception as exc:  # noqa: BLE001 - scipy's curve_fit fails variously
        raise SimulationError(f"Birch-Murnaghan fit failed: {exc}", field="max_strain") from None
    bp = float(eos.eos_parameters[2])
    order = np.argsort(volumes)
    return {
        "V0": float(v0),
        "E0": float(e0),
        "B0_GPa": float(b0) * EV_A3_TO_GPA,
        "B0_prime": bp,
        "V0_per_atom": float(v0) / natoms,
        "E0_per_atom": float(e0) / natoms,
        "volumes": [float(volumes[i]) for i in order],
        "energies": [float(energies[i]) for i in order],
        "natoms": natoms,
    }


def run(atoms: Atoms, calculator: Any, **params: Any) -> dict[str, Any]:
    """The whole EOS in this process (the recorded one runs the relaxations as OPT tasks)."""
    p = check(params)
    work = atoms.copy()
    full = relax_as(work, calculator, p)
    volumes, energies, converged = [], [], [full["converged"]]
    for cell in strained(work, p["n_points"], p["max_strain"]):
        r = relax(
            cell,
            calculator,
            optimizer=p["optimizer"],
            fmax=p["fmax"],
            steps=p["steps"],
            symmetry=p["symmetry"],
        )
        volumes.append(cell.get_volume())
        energies.append(r["energy"])
        converged.append(r["converged"])
    out = fit(volumes, energies, len(work))
    out["a0_cubic"] = cubic_a0(work, out["V0"])
    out["converged"] = all(converged)
    return out


def cubic_a0(relaxed: Atoms, v0: float) -> float | None:
    """Cubic lattice constant at the fitted V0 when ``relaxed`` has a cubic cell, else None."""
    lengths, angles = relaxed.cell.lengths(), relaxed.cell.angles()
    if np.ptp(lengths) < 1e-4 * lengths.mean() and np.allclose(angles, 90.0, atol=1e-3):
        return float(lengths.mean() * (v0 / relaxed.get_volume()) ** (1.0 / 3.0))
    return None
