"""VACANCY: formation energy and migration barrier (NEB_FROM_ENDPOINTS) of a vacancy.

E_f = E(N-1, relaxed at the bulk's cell) - (N-1)/N · E(N). The hop moves a nearest
neighbour of the vacant site into it; both endpoints are the same defect, so the
barrier is symmetric (forward = backward) for a correct NEB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from autopot.simulate import neb
from autopot.simulate.common import SimulationError, check_number, check_relax, merge, relax

if TYPE_CHECKING:
    from ase import Atoms

DEFAULTS: dict[str, Any] = {"supercell": [2, 2, 2], "relax_bulk": True, "site": 0,
                            "migration": True, "n_images": 5, "optimizer": "BFGS", "fmax": 0.01,
                            "steps": 1000, "neb_optimizer": "FIRE", "neb_fmax": 0.02,
                            "climb": True}


def check(params: dict[str, Any]) -> dict[str, Any]:
    p = merge(DEFAULTS, params)
    sc = p["supercell"]
    if isinstance(sc, int) and not isinstance(sc, bool):
        sc = p["supercell"] = [sc] * 3
    if (not isinstance(sc, (list, tuple)) or len(sc) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sc)):
        raise SimulationError("expected 3 positive integers", field="supercell")
    p["supercell"] = list(sc)
    check_number("site", p["site"], minimum=0, integer=True)
    check_number("n_images", p["n_images"], minimum=1, integer=True)
    check_relax("", p["optimizer"], p["fmax"], p["steps"])
    check_relax("neb_", p["neb_optimizer"], p["neb_fmax"], p["steps"])
    return p


def run(atoms: Atoms, calculator: Any, **params: Any) -> dict[str, Any]:
    p = check(params)
    work = atoms.copy()
    if p["relax_bulk"]:
        relax(work, calculator, optimizer=p["optimizer"], fmax=p["fmax"] / 10, steps=p["steps"],
              cell_filter="FrechetCell", symmetry=True)
    cell = work.repeat(p["supercell"])
    n = len(cell)
    if n < 4:
        raise SimulationError(f"{n} atoms is too small a supercell for a vacancy", field="supercell")
    if p["site"] >= n:
        raise SimulationError(f"no site {p['site']} in the {n}-atom supercell", field="site")
    cell.calc = calculator
    e_bulk = float(cell.get_potential_energy())
    site = p["site"]
    initial = cell.copy()
    del initial[site]
    r = relax(initial, calculator, optimizer=p["optimizer"], fmax=p["fmax"], steps=p["steps"])
    out: dict[str, Any] = {
        "formation_energy": r["energy"] - (n - 1) / n * e_bulk, "natoms_bulk": n,
        "bulk_energy": e_bulk, "defect_energy": r["energy"], "converged": r["converged"],
    }
    if p["migration"]:
        dists = cell.get_distances(site, range(n), mic=True)
        dists[site] = np.inf
        neighbour = int(np.argmin(dists))
        final = cell.copy()
        final.positions[neighbour] = cell.positions[site]
        del final[site]
        hop = neb.from_endpoints(initial, final, calculator, n_images=p["n_images"],
                                 climb=p["climb"], optimizer=p["neb_optimizer"],
                                 fmax=p["neb_fmax"], steps=p["steps"],
                                 endpoint_optimizer=p["optimizer"], endpoint_fmax=p["fmax"])
        out.update({
            "migration_barrier": hop["barrier_forward"],
            "migration_barrier_backward": hop["barrier_backward"],
            "migration_energies": hop["relative_energies"], "hop_distance": float(dists[neighbour]),
            "neb_converged": hop["converged"],
        })
    return out
