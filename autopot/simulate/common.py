"""What every simulation shares: input checks, structures as canonical text, relaxation.

Simulations are plain functions ``run(atoms, calculator, **params) -> dict``; the dict is
JSON-serialisable (lists, not arrays) because it is what the store records and what a
cached call returns. Every parameter is checked before any energy is computed, and a bad
one raises :class:`SimulationError` naming it, so a typo never costs a queue wait.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import units

from autopot.errors import AutopotError

if TYPE_CHECKING:
    from ase import Atoms

#: eV/Å^3 → GPa
EV_A3_TO_GPA = 1.0 / units.GPa
#: eV/Å^2 → mJ/m^2
EV_A2_TO_MJ_M2 = 16021.766208

#: ASE optimizers accepted by name (``ase.optimize`` attributes).
OPTIMIZERS = (
    "BFGS",
    "BFGSLineSearch",
    "LBFGS",
    "LBFGSLineSearch",
    "FIRE",
    "FIRE2",
    "MDMin",
    "GPMin",
    "QuasiNewton",
    "GoodOldQuasiNewton",
    "ODE12r",
)
#: Cell filters by name → ``ase.filters`` class (``none``: positions only).
FILTERS = {
    "none": None,
    "UnitCell": "UnitCellFilter",
    "ExpCell": "ExpCellFilter",
    "FrechetCell": "FrechetCellFilter",
}


class SimulationError(AutopotError):
    """A simulation's input is wrong (the field names the parameter)."""


# ---------------------------------------------------------------------------- checks
def merge(defaults: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with ``params``; an unknown name is refused (a typo is not ignored)."""
    import difflib

    unknown = sorted(set(params) - set(defaults))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(defaults), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(defaults)}"
        raise SimulationError(f"unknown parameter{hint}", field=unknown[0])
    return {**defaults, **params}


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = list(choices)
    if value not in choices:
        raise SimulationError(
            f"unknown value {value!r}; use one of {', '.join(choices)}", field=name
        )
    return value


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    strict: bool = False,
    maximum: float | None = None,
    integer: bool = False,
) -> Any:
    """A finite number within bounds (``strict``: the minimum itself is refused)."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds + (np.integer, np.floating)):
        raise SimulationError(
            f"expected {'an integer' if integer else 'a number'}, got {value!r}", field=name
        )
    number = float(value)  # type: ignore[arg-type]  # a number: checked just above
    if not math.isfinite(number):
        raise SimulationError(f"expected a finite number, got {value!r}", field=name)
    if minimum is not None and (number < minimum or (strict and number == minimum)):
        raise SimulationError(
            f"must be {'>' if strict else '>='} {minimum}, got {value!r}", field=name
        )
    if maximum is not None and number > maximum:
        raise SimulationError(f"must be <= {maximum}, got {value!r}", field=name)
    return int(number) if integer else number


def check_optimizer(name: str, value: Any) -> str:
    return check_choice(name, value, OPTIMIZERS)


def check_filter(name: str, value: Any) -> str:
    return check_choice(name, value, FILTERS)


def check_relax(
    prefix: str, optimizer: Any, fmax: Any, steps: Any, cell_filter: Any = "none"
) -> None:
    """The four settings every relaxation takes, named ``<prefix>optimizer`` etc."""
    check_optimizer(f"{prefix}optimizer", optimizer)
    check_number(f"{prefix}fmax", fmax, minimum=0, strict=True)
    check_number(f"{prefix}steps", steps, minimum=0, integer=True)
    check_filter(f"{prefix}filter", cell_filter)


# ---------------------------------------------------------------------------- structures
def read_structure(source: Any, field: str = "structure") -> Atoms:
    """An Atoms from an Atoms, a result dict, or any file ASE reads (last frame)."""
    from ase import Atoms

    if isinstance(source, Atoms):
        atoms = source.copy()
    elif isinstance(source, dict):
        atoms = atoms_from_dict(source, field)
    elif isinstance(source, (str, Path)):
        from ase.io import read

        path = Path(source).expanduser()
        if not path.is_file():
            raise SimulationError("structure file not found", file=path, field=field)
        try:
            atoms = read(path, index=-1)
        except Exception as exc:  # noqa: BLE001 - ASE's readers raise anything on a bad file
            raise SimulationError(
                f"cannot read a structure: {type(exc).__name__}: {exc}", file=path, field=field
            ) from None
    else:
        raise SimulationError(
            f"expected an Atoms, a dict or a file, got {type(source).__name__}", field=field
        )
    if len(atoms) == 0:
        raise SimulationError("structure has no atoms", field=field)
    return atoms


def canonical(atoms: Atoms) -> Atoms:
    """Only what defines the physics: species, positions, cell, periodicity.

    Calculator results, info, tags, velocities and constraints are dropped so that the
    same structure read from a CIF or built in Python has one identity.
    """
    from ase import Atoms

    return Atoms(
        numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array, pbc=atoms.pbc
    )


def canonical_extxyz(atoms: Atoms) -> str:
    """Canonical extxyz text: fixed columns and float format, hence a stable sha256."""
    from ase.io import write

    buf = io.StringIO()
    write(
        buf,
        canonical(atoms),
        format="extxyz",
        columns=["symbols", "positions"],
        write_info=False,
        write_results=False,
    )
    return buf.getvalue()


def structure_sha256(atoms: Atoms) -> str:
    return hashlib.sha256(canonical_extxyz(atoms).encode()).hexdigest()


def atoms_to_dict(atoms: Atoms) -> dict[str, Any]:
    return {
        "symbols": atoms.get_chemical_symbols(),
        "positions": atoms.positions.tolist(),
        "cell": atoms.cell.array.tolist(),
        "pbc": [bool(p) for p in atoms.pbc],
    }


def atoms_from_dict(data: dict[str, Any], field: str = "structure") -> Atoms:
    from ase import Atoms

    try:
        return Atoms(
            symbols=data["symbols"], positions=data["positions"], cell=data["cell"], pbc=data["pbc"]
        )
    except Exception as exc:  # noqa: BLE001 - any malformed dict is the same user error
        raise SimulationError(
            f"not a structure dict ({type(exc).__name__}: {exc})", field=field
        ) from None


def plain(value: Any) -> Any:
    """numpy → Python, recursively: results must survive JSON and the store unchanged."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


# ---------------------------------------------------------------------------- relaxation
def require_periodic(atoms: Atoms, what: str) -> None:
    """Refused before any run is recorded: ``what`` needs a periodic crystal."""
    if not atoms.pbc.all() or atoms.cell.rank != 3:
        raise SimulationError(
            f"{what} need a periodic structure with a full cell", field="structure"
        )


def relax_as(atoms: Atoms, calculator: Any, p: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """:func:`relax` with a task's checked relaxation parameters (optimizer, fmax, steps,
    and ``filter``/``symmetry`` where the task has them); ``overrides`` win."""
    options: dict[str, Any] = {"optimizer": p["optimizer"], "fmax": p["fmax"], "steps": p["steps"]}
    if "filter" in p:
        options["cell_filter"] = p["filter"]
    if "symmetry" in p:
        options["symmetry"] = p["symmetry"]
    return relax(atoms, calculator, **{**options, **overrides})


def relax(
    atoms: Atoms,
    calculator: Any,
    *,
    optimizer: str = "BFGS",
    fmax: float = 0.01,
    steps: int = 1000,
    cell_filter: str = "none",
    symmetry: bool = False,
    constraints: Sequence[Any] = (),
    trajectory: str | None = None,
) -> dict[str, Any]:
    """Relax ``atoms`` in place; returns steps, converged and the final energy.

    ``symmetry`` adds ASE's FixSymmetry (space group of the input kept); ``constraints``
    are added as given (e.g. FixCartesian for relaxation along one direction only).
    """
    import ase.filters
    import ase.optimize

    atoms.calc = calculator
    cons = list(constraints)
    if symmetry:
        from ase.constraints import FixSymmetry

        cons.append(FixSymmetry(atoms))
    atoms.set_constraint(cons or None)
    target: Any = atoms
    filter_name = FILTERS[cell_filter]
    if filter_name is not None:
        target = getattr(ase.filters, filter_name)(atoms)
    opt = getattr(ase.optimize, optimizer)(target, logfile=None, trajectory=trajectory)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    energy = float(atoms.get_potential_energy())
    forces = atoms.get_forces()
    atoms.set_constraint()
    return {
        "energy": energy,
        "steps": int(opt.nsteps),
        "converged": converged,
        "max_force": float(np.linalg.norm(forces, axis=1).max()),
    }
