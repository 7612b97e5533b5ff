"""SFE: the stacking-fault energy (mJ/m²) of an fcc or bcc crystal, relaxed normal to the
fault as in the AutoPot paper's Appendix B.

fcc: the intrinsic fault on {111} (a Shockley partial a/6<112>); bcc: the unstable
1/4[111] fault on {110} (half the Burgers vector a/2<111>). ``fraction`` scales the fault
vector (a point of the γ-line): 0 and a full lattice translation (3 for fcc, 2 for bcc)
are the perfect crystal, 0.5 for fcc the unstable fault.

The faulted cell is built by tilting the cell vector normal to the fault plane by the
fault vector (one fault per periodic cell, at the boundary, no atom moved). mlippykit's
``configurations.stacking_faults.create_sf_fcc/bcc`` build the same faults (same energy,
checked in the tests) but fix the displacement (no γ-line, no perfect-crystal control),
print to standard output and call the root logger with broken format arguments, so they
are used as the tests' oracle, not here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from autopot.simulate.common import (
    EV_A2_TO_MJ_M2,
    SimulationError,
    check_choice,
    check_number,
    check_relax,
    merge,
    relax,
)

if TYPE_CHECKING:
    from ase import Atoms

#: orientation (x, y = fault normal, z) and fault vector in units of a0 along x, y, z
GEOMETRY = {
    "fcc": ([[-1, 1, 2], [1, -1, 1], [1, 1, 0]], (-1 / np.sqrt(6), 0.0, 0.0)),
    "bcc": ([[1, 1, -2], [-1, 1, 0], [1, 1, 1]], (0.0, 0.0, np.sqrt(3) / 4)),
}
DEFAULTS: dict[str, Any] = {
    "lattice": "auto",
    "layers": 4,
    "fraction": 1.0,
    "relax": "normal",
    "relax_bulk": True,
    "optimizer": "BFGS",
    "fmax": 0.001,
    "steps": 1000,
}


def check(params: dict[str, Any]) -> dict[str, Any]:
    p = merge(DEFAULTS, params)
    check_choice("lattice", p["lattice"], ("auto", "fcc", "bcc"))
    check_number("layers", p["layers"], minimum=1, integer=True)
    check_number("fraction", p["fraction"])
    check_choice("relax", p["relax"], ("normal", "none"))
    check_relax("", p["optimizer"], p["fmax"], p["steps"])
    return p


def lattice_of(atoms: Atoms) -> tuple[str, str, float]:
    """(fcc|bcc, element, a0) of a one-element cubic crystal, from its space group."""
    import warnings

    import spglib

    symbols = set(atoms.get_chemical_symbols())
    if len(symbols) != 1:
        raise SimulationError(
            "stacking faults are built for one-element crystals", field="structure"
        )
    cell = (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)
    with warnings.catch_warnings():  # spglib 2.x warns about its own error-handling switch
        warnings.simplefilter("ignore", DeprecationWarning)
        sg = spglib.get_symmetry_dataset(cell, symprec=1e-3)
    number = sg.number if sg is not None else 0
    lattice = {225: "fcc", 229: "bcc"}.get(number)
    if lattice is None:
        raise SimulationError(f"not an fcc or bcc crystal (space group {number})", field="lattice")
    per_cell = 4 if lattice == "fcc" else 2
    a0 = (atoms.get_volume() / len(atoms) * per_cell) ** (1 / 3)
    return lattice, symbols.pop(), float(a0)


def faulted_cells(
    lattice: str, symbol: str, a0: float, layers: int, fraction: float
) -> tuple[Atoms, Atoms, float]:
    """(faulted, perfect, fault area Å²) with ``layers`` repeats along the fault normal."""
    from ase.lattice.cubic import BodyCenteredCubic, FaceCenteredCubic

    axes, vector = GEOMETRY[lattice]
    build = FaceCenteredCubic if lattice == "fcc" else BodyCenteredCubic
    perfect = build(
        directions=axes, size=(1, layers, 1), symbol=symbol, latticeconstant=a0, pbc=True
    )
    faulted = perfect.copy()
    cell = faulted.cell.array.copy()
    cell[1] += fraction * a0 * np.asarray(vector)
    faulted.set_cell(cell, scale_atoms=False)
    area = float(np.linalg.norm(np.cross(cell[0], cell[2])))
    return faulted, perfect, area


def check_structure(atoms: Atoms) -> None:
    """Refused before any run is recorded (the API calls this too)."""
    lattice_of(atoms)


def run(atoms: Atoms, calculator: Any, **params: Any) -> dict[str, Any]:
    """Relax the bulk (cell), build the fault from its a0, relax along the normal."""
    from ase.constraints import FixCartesian

    p = check(params)
    work = atoms.copy()
    if p["relax_bulk"]:
        relax(
            work,
            calculator,
            optimizer="BFGS",
            fmax=p["fmax"],
            steps=p["steps"],
            cell_filter="FrechetCell",
            symmetry=True,
        )
    lattice, symbol, a0 = lattice_of(work)
    if p["lattice"] != "auto" and p["lattice"] != lattice:
        raise SimulationError(f"the structure is {lattice}, not {p['lattice']}", field="lattice")
    faulted, perfect, area = faulted_cells(lattice, symbol, a0, p["layers"], p["fraction"])
    perfect.calc = calculator
    e_perfect = float(perfect.get_potential_energy())
    faulted.calc = calculator
    e_unrelaxed = float(faulted.get_potential_energy())
    relaxed = None
    if p["relax"] == "normal":  # atoms move along y (the fault normal) only
        relaxed = relax(
            faulted,
            calculator,
            optimizer=p["optimizer"],
            fmax=p["fmax"],
            steps=p["steps"],
            constraints=[FixCartesian(range(len(faulted)), mask=(True, False, True))],
        )
    e_fault = relaxed["energy"] if relaxed else e_unrelaxed
    return {
        "sfe_mJ_m2": (e_fault - e_perfect) / area * EV_A2_TO_MJ_M2,
        "sfe_unrelaxed_mJ_m2": (e_unrelaxed - e_perfect) / area * EV_A2_TO_MJ_M2,
        "lattice": lattice,
        "a0": a0,
        "area_A2": area,
        "natoms": len(faulted),
        "fraction": float(p["fraction"]),
        "converged": relaxed["converged"] if relaxed else None,
    }
