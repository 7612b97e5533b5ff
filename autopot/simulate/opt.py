"""OPT: relax a structure with an ASE optimizer, optionally with its cell and symmetry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autopot.simulate.common import atoms_to_dict, check_relax, merge, relax_as

if TYPE_CHECKING:
    from ase import Atoms

DEFAULTS: dict[str, Any] = {
    "optimizer": "BFGS",
    "filter": "none",
    "fmax": 0.01,
    "steps": 1000,
    "symmetry": False,
}


def check(params: dict[str, Any]) -> dict[str, Any]:
    p = merge(DEFAULTS, params)
    check_relax("", p["optimizer"], p["fmax"], p["steps"], p["filter"])
    return p


def run(atoms: Atoms, calculator: Any, **params: Any) -> dict[str, Any]:
    """Relaxed structure, energy, steps taken and whether ``fmax`` was reached."""
    p = check(params)
    work = atoms.copy()
    out = relax_as(work, calculator, p)
    out.update(
        {
            "energy_per_atom": out["energy"] / len(work),
            "volume": float(work.get_volume()) if work.cell.rank == 3 else None,
            "natoms": len(work),
            "structure": atoms_to_dict(work),
        }
    )
    return out
