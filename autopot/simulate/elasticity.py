"""ELASTICITY: the 6x6 elastic tensor from strain–stress fits (matscipy's
``fit_elastic_constants``), clamped-ion by default, relaxed-ion on request; its fit
errors, C11/C12/C44 (cubic averages) and the Voigt, Reuss and Hill moduli.

The structure is relaxed (cell and positions, symmetry kept) first unless ``relax`` is
off: elastic constants are defined at zero stress.
"""

from __future__ import annotations

import contextlib
import io
from typing import TYPE_CHECKING, Any

import numpy as np

from autopot.simulate.common import (
    EV_A3_TO_GPA,
    SimulationError,
    check_number,
    check_relax,
    merge,
    relax_as,
    require_periodic,
)

if TYPE_CHECKING:
    from ase import Atoms

SYMMETRIES = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal_high",
    "trigonal_low",
    "hexagonal",
    "cubic",
)
DEFAULTS: dict[str, Any] = {
    "symmetry": "triclinic",
    "n_steps": 5,
    "delta": 0.005,
    "relaxed_ion": False,
    "relax": True,
    "optimizer": "BFGS",
    "filter": "FrechetCell",
    "fmax": 0.001,
    "steps": 1000,
    "ion_fmax": 0.001,
}


def check(params: dict[str, Any]) -> dict[str, Any]:
    p = merge(DEFAULTS, params)
    if p["symmetry"] not in SYMMETRIES:
        raise SimulationError(
            f"unknown value {p['symmetry']!r}; use one of {', '.join(SYMMETRIES)}", field="symmetry"
        )
    check_number("n_steps", p["n_steps"], minimum=3, integer=True)
    check_number("delta", p["delta"], minimum=0, strict=True, maximum=0.1)
    check_number("ion_fmax", p["ion_fmax"], minimum=0, strict=True)
    check_relax("", p["optimizer"], p["fmax"], p["steps"], p["filter"])
    return p


def moduli(c: np.ndarray) -> dict[str, float]:
    """Voigt, Reuss and Hill bulk and shear moduli of a 6x6 tensor (same units)."""
    s = np.linalg.inv(c)
    kv = (c[0, 0] + c[1, 1] + c[2, 2] + 2 * (c[0, 1] + c[1, 2] + c[0, 2])) / 9
    gv = (
        c[0, 0]
        + c[1, 1]
        + c[2, 2]
        - (c[0, 1] + c[1, 2] + c[0, 2])
        + 3 * (c[3, 3] + c[4, 4] + c[5, 5])
    ) / 15
    kr = 1 / (s[0, 0] + s[1, 1] + s[2, 2] + 2 * (s[0, 1] + s[1, 2] + s[0, 2]))
    gr = 15 / (
        4 * (s[0, 0] + s[1, 1] + s[2, 2])
        - 4 * (s[0, 1] + s[1, 2] + s[0, 2])
        + 3 * (s[3, 3] + s[4, 4] + s[5, 5])
    )
    return {
        "K_voigt": kv,
        "K_reuss": kr,
        "K_hill": (kv + kr) / 2,
        "G_voigt": gv,
        "G_reuss": gr,
        "G_hill": (gv + gr) / 2,
    }


def check_structure(atoms: Atoms) -> None:
    """Refused before any run is recorded (the API calls this too)."""
    require_periodic(atoms, "elastic constants")


def run(atoms: Atoms, calculator: Any, **params: Any) -> dict[str, Any]:
    from matscipy.elasticity import fit_elastic_constants

    p = check(params)
    check_structure(atoms)
    work = atoms.copy()
    relaxed = None
    if p["relax"]:
        relaxed = relax_as(work, calculator, p, symmetry=True)
    work.calc = calculator
    optimizer = None
    kwargs: dict[str, Any] = {}
    if p["relaxed_ion"]:
        import ase.optimize

        optimizer = getattr(ase.optimize, p["optimizer"])
        kwargs["fmax"] = p["ion_fmax"]
    with contextlib.redirect_stdout(io.StringIO()):  # matscipy prints its fit tables
        c, c_err = fit_elastic_constants(
            work,
            symmetry=p["symmetry"],
            N_steps=p["n_steps"],
            delta=p["delta"],
            optimizer=optimizer,
            verbose=False,
            logfile=None,
            **kwargs,
        )
    c_gpa = np.asarray(c) * EV_A3_TO_GPA
    err_gpa = np.asarray(c_err) * EV_A3_TO_GPA
    m = {f"{k}_GPa": float(v) for k, v in moduli(c_gpa).items()}
    out = {
        "C_GPa": c_gpa.tolist(),
        "C_err_GPa": err_gpa.tolist(),
        "C11_GPa": float(np.mean([c_gpa[i, i] for i in range(3)])),
        "C12_GPa": float(np.mean([c_gpa[0, 1], c_gpa[1, 2], c_gpa[0, 2]])),
        "C44_GPa": float(np.mean([c_gpa[i, i] for i in range(3, 6)])),
        "max_fit_error_GPa": float(np.abs(err_gpa).max()),
        "relaxed_ion": bool(p["relaxed_ion"]),
        "natoms": len(work),
        "volume": float(work.get_volume()),
        **m,
    }
    out["B_from_Cij_GPa"] = (out["C11_GPa"] + 2 * out["C12_GPa"]) / 3
    if relaxed is not None:
        out["relaxed_energy"] = relaxed["energy"]
    return out
