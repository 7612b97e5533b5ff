"""VACANCY: formation energy and migration barrier (NEB_FROM_ENDPOINTS) of a vacancy.

E_f = E(N-1, relaxed at the bulk's cell) - (N-1)/N · E(N). The hop moves a nearest
neighbour of the vacant site into it; both endpoints are the same defect, so the
barrier is symmetric (forward = backward) for a correct NEB.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from autopot.simulate import neb
from autopot.simulate.common import SimulationError, check_number, check_relax, merge, relax

if TYPE_CHECKING:
    from ase import Atoms

DEFAULTS: dict[str, Any] = {
    "supercell": [2, 2, 2],
    "relax_bulk": True,
    "site": 0,
    "migration": True,
    "n_images": 5,
    "optimizer": "BFGS",
    "fmax": 0.01,
    "steps": 1000,
    "neb_optimizer": "FIRE",
    "neb_fmax": 0.02,
    "climb": True,
}


def check(params: dict[str, Any]) -> dict[str, Any]:
    p = merge(DEFAULTS, params)
    sc = p["supercell"]
    if isinstance(sc, int) and not isinstance(sc, bool):
        sc = p["supercell"] = [sc] * 3
    if (
        not isinstance(sc, (list, tuple))
        or len(sc) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sc)
    ):
        raise SimulationError("expected 3 positive integers", field="supercell")
    p["supercell"] = list(sc)
    check_number("site", p["site"], minimum=0, integer=True)
    check_number("n_images", p["n_images"], minimum=1, integer=True)
    check_relax("", p["optimizer"], p["fmax"], p["steps"])
    check_relax("neb_", p["neb_optimizer"], p["neb_fmax"], p["steps"])
    return p


def bulk_relax_settings(p: dict[str, Any]) -> dict[str, Any]:
    """OPT settings of the bulk's full relaxation (tighter: a0 sets every energy here)."""
    return {
        "optimizer": p["optimizer"],
        "filter": "FrechetCell",
        "fmax": p["fmax"] / 10,
        "steps": p["steps"],
        "symmetry": True,
    }


def defect_cells(bulk: Atoms, p: dict[str, Any]) -> tuple[Atoms, Atoms, Atoms, float]:
    """(perfect supercell, vacancy at ``site``, vacancy at its nearest neighbour's site,
    hop distance); both defect cells list the remaining atoms in the same order."""
    cell = bulk.repeat(p["supercell"])
    n = len(cell)
    if n < 4:
        raise SimulationError(
            f"{n} atoms is too small a supercell for a vacancy", field="supercell"
        )
    site = p["site"]
    if site >= n:
        raise SimulationError(f"no site {site} in the {n}-atom supercell", field="site")
    initial = cell.copy()
    del initial[site]
    dists = cell.get_distances(site, range(n), mic=True)
    dists[site] = np.inf
    neighbour = int(np.argmin(dists))
    final = cell.copy()
    final.positions[neighbour] = cell.positions[site]
    del final[site]
    return cell, initial, final, float(dists[neighbour])


def neb_settings(p: dict[str, Any]) -> dict[str, Any]:
    """NEB_FROM_ENDPOINTS parameters of the hop (its other settings at their defaults)."""
    return {
        **neb.ENDPOINT_DEFAULTS,
        "n_images": p["n_images"],
        "climb": p["climb"],
        "optimizer": p["neb_optimizer"],
        "fmax": p["neb_fmax"],
        "steps": p["steps"],
        "endpoint_optimizer": p["optimizer"],
        "endpoint_fmax": p["fmax"],
    }


def combine(
    natoms: int,
    bulk_energy: float,
    defect: Mapping[str, Any],
    hop: Mapping[str, Any] | None,
    hop_distance: float,
) -> dict[str, Any]:
    """The result from the perfect cell's energy, the relaxed defect and the NEB."""
    out: dict[str, Any] = {
        "formation_energy": defect["energy"] - (natoms - 1) / natoms * bulk_energy,
        "natoms_bulk": natoms,
        "bulk_energy": bulk_energy,
        "defect_energy": defect["energy"],
        "converged": bool(defect["converged"]),
    }
    if hop is not None:
        out.update(
            {
                "migration_barrier": hop["barrier_forward"],
                "migration_barrier_backward": hop["barrier_backward"],
                "migration_energies": hop["relative_energies"],
                "hop_distance": hop_distance,
                "neb_converged": bool(hop["converged"]),
            }
        )
    return out


def run(atoms: Atoms, calculator: Any, **params: Any) -> dict[str, Any]:
    """The whole computation in this process (the recorded one runs its parts as OPT and
    NEB_FROM_ENDPOINTS tasks, concurrently)."""
    p = check(params)
    work = atoms.copy()
    if p["relax_bulk"]:
        b = bulk_relax_settings(p)
        relax(
            work,
            calculator,
            optimizer=b["optimizer"],
            fmax=b["fmax"],
            steps=b["steps"],
            cell_filter=b["filter"],
            symmetry=b["symmetry"],
        )
    cell, initial, final, distance = defect_cells(work, p)
    cell.calc = calculator
    e_bulk = float(cell.get_potential_energy())
    defect = relax(
        initial.copy(), calculator, optimizer=p["optimizer"], fmax=p["fmax"], steps=p["steps"]
    )
    hop = (
        neb.from_endpoints(initial, final, calculator, **neb_settings(p))
        if p["migration"]
        else None
    )
    return combine(len(cell), e_bulk, defect, hop, distance)
