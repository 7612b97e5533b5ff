"""Reference calculators for sp_calc: EMT, EAM, VASP, or any ASE calculator by import path.

A spec is the sp_calc run space's ``calculator`` dict::

    {"calculator": "emt"}
    {"calculator": "eam", "pot_fname": "Cu_u3.eam"}            # file via sp_calc pot_fname
    {"calculator": "vasp", "pot_fname": "INCAR", "kpts": [4, 4, 4], "setups": {...}}
    {"calculator": "ase.calculators.lj:LennardJones", "kwargs": {"sigma": 2.3}}

Everything is checked in :func:`make_calculator` before anything runs, so a typo in a
spec fails with one line naming the field.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from autopot.errors import AutopotError

_BUILTIN = ("emt", "eam", "vasp")


def _field(spec: dict[str, Any], name: str, kinds: type | tuple[type, ...], default: Any = None) -> Any:
    value = spec.get(name, default)
    if value is not None and not isinstance(value, kinds):
        raise AutopotError(f"expected {getattr(kinds, '__name__', kinds)}, got {type(value).__name__}",
                           field=f"calculator.{name}")
    return value


def make_calculator(spec: dict[str, Any], *, directory: Path) -> Any:
    """An ASE calculator for ``spec``; files named by the spec must exist."""
    if not isinstance(spec, dict):
        raise AutopotError(f"expected a mapping, got {type(spec).__name__}", field="calculator")
    name = spec.get("calculator")
    if not isinstance(name, str) or not name:
        raise AutopotError("missing calculator name (emt, eam, vasp or module:Class)", field="calculator.calculator")
    kwargs = _field(spec, "kwargs", dict, {}) or {}
    low = name.lower()
    if low == "emt":
        from ase.calculators.emt import EMT

        return EMT(**kwargs)
    if low == "eam":
        from ase.calculators.eam import EAM

        pot = _existing(spec, "pot_fname")
        return EAM(potential=str(pot), **kwargs)
    if low == "vasp":
        return _vasp(spec, directory, kwargs)
    return _by_import_path(name, kwargs)


def _existing(spec: dict[str, Any], name: str) -> Path:
    value = spec.get(name)
    if not value:
        raise AutopotError(f"the {spec.get('calculator')} calculator needs a file", field=f"calculator.{name}")
    path = Path(value)
    if not path.is_file():
        raise AutopotError("file not found", file=path, field=f"calculator.{name}")
    return path


def _vasp(spec: dict[str, Any], directory: Path, kwargs: dict[str, Any]) -> Any:
    """ASE's Vasp with the INCAR given as a file (the AutoPot paper's ``pot_fname``).

    ``read_incar`` takes every INCAR tag; the spec adds kpts/setups/xc etc. as ASE keyword
    arguments. VASP itself is found by ASE from ASE_VASP_COMMAND/VASP_COMMAND and its
    pseudopotentials from VASP_PP_PATH, as for any ASE user.
    """
    from ase.calculators.vasp import Vasp

    incar = _existing(spec, "pot_fname")
    extra = {k: v for k, v in spec.items() if k not in ("calculator", "pot_fname", "kwargs")}
    calc = Vasp(directory=str(directory), **extra, **kwargs)
    try:
        calc.read_incar(str(incar))
    except Exception as exc:  # noqa: BLE001 - ASE raises several types for a bad INCAR
        raise AutopotError(f"cannot read INCAR: {exc}", file=incar, field="calculator.pot_fname") from None
    return calc


def _by_import_path(name: str, kwargs: dict[str, Any]) -> Any:
    module_name, sep, attr = name.partition(":")
    if not sep:
        module_name, _, attr = name.rpartition(".")
    if not module_name or not attr:
        raise AutopotError(f"unknown calculator {name!r}; use {', '.join(_BUILTIN)} or module:Class",
                           field="calculator.calculator")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise AutopotError(f"cannot import calculator {name!r}: {exc}", field="calculator.calculator") from None
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise AutopotError(f"bad arguments for {name}: {exc}", field="calculator.kwargs") from None


def compute_single_point(atoms: Any, spec: dict[str, Any], directory: Path) -> Any:
    """Energy, forces and (where available) stress of ``atoms``, as a SinglePointCalculator copy."""
    from ase.calculators.singlepoint import SinglePointCalculator

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    calc = make_calculator(spec, directory=directory)
    work = atoms.copy()
    work.calc = calc
    try:
        energy = work.get_potential_energy()
        forces = work.get_forces()
    except AutopotError:
        raise
    except Exception as exc:  # noqa: BLE001 - the calculator's failure is the run's cause
        raise AutopotError(f"{spec.get('calculator')} calculation failed: {type(exc).__name__}: {exc}",
                           file=directory, field="calculator") from exc
    results: dict[str, Any] = {"energy": energy, "forces": forces}
    if work.pbc.all():
        try:
            results["stress"] = work.get_stress()
        except Exception:  # noqa: BLE001 - calculators without stress (PropertyNotImplemented)
            pass
    out = atoms.copy()
    out.calc = SinglePointCalculator(out, **results)
    return out


def read_vasp_result(directory: Path) -> Any:
    """Energy/forces/stress of a finished VASP run directory (vasprun.xml, else OUTCAR)."""
    from ase.io import read

    directory = Path(directory)
    for name, fmt in (("vasprun.xml", "vasp-xml"), ("OUTCAR", "vasp-out")):
        path = directory / name
        if path.is_file():
            try:
                return read(path, index=-1, format=fmt)
            except Exception as exc:  # noqa: BLE001 - truncated or foreign file
                raise AutopotError(f"cannot read VASP output: {type(exc).__name__}: {exc}", file=path) from None
    raise AutopotError("no vasprun.xml or OUTCAR: VASP did not finish here", file=directory)
