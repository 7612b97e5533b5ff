"""Reference calculators for sp_calc: EMT, EAM, VASP, or any ASE calculator by import path.

A spec is the sp_calc run space's ``calculator`` dict::

    {"calculator": "emt"}
    {"calculator": "eam", "potential": "Cu_u3.eam"}
    {"calculator": "vasp", "incar": "INCAR", "kpts": [4, 4, 4], "setups": {...}, "pp": "PBE"}
    {"calculator": "ase.calculators.lj:LennardJones", "kwargs": {"sigma": 2.3}}

``pot_fname`` is accepted in place of ``potential``/``incar``: it is the AutoPot paper's
name, and sp_calc fills it from the job's ``pot_fname`` file. ``kwargs`` go to the
calculator's constructor for every calculator.

Everything is checked in :func:`make_calculator` before anything runs, so a typo in a
spec fails with one line naming the field rather than after a queue wait.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autopot.errors import AutopotError

if TYPE_CHECKING:
    from ase import Atoms
    from ase.calculators.calculator import BaseCalculator

_BUILTIN = ("emt", "eam", "vasp")
_FILE_FIELD = {"eam": "potential", "vasp": "incar"}
_RESERVED = ("calculator", "kwargs", "pot_fname", "potential", "incar")


def _field(spec: dict[str, Any], name: str, kinds: type | tuple[type, ...], default: Any = None) -> Any:
    value = spec.get(name, default)
    if value is not None and not isinstance(value, kinds):
        raise AutopotError(f"expected {getattr(kinds, '__name__', kinds)}, got {type(value).__name__}",
                           field=f"calculator.{name}")
    return value


def make_calculator(spec: dict[str, Any], *, directory: Path) -> BaseCalculator:
    """An ASE calculator for ``spec``; every file it names must exist and parse."""
    if not isinstance(spec, dict):
        raise AutopotError(f"expected a mapping, got {type(spec).__name__}", field="calculator")
    name = spec.get("calculator")
    if not isinstance(name, str) or not name.strip():
        raise AutopotError("missing calculator name (emt, eam, vasp or module:Class)", field="calculator.calculator")
    kwargs = _field(spec, "kwargs", dict, {}) or {}
    low = name.strip().lower()
    if low in ("emt", "eam"):
        extra = sorted(k for k in spec if k not in _RESERVED)
        if extra:  # silently ignoring a setting would give a different potential than asked for
            raise AutopotError(f"unknown setting for {low} (put constructor arguments in kwargs)",
                               field=f"calculator.{extra[0]}")
    if low == "emt":
        from ase.calculators.emt import EMT

        unknown = sorted(set(kwargs) - set(EMT.default_parameters))
        if unknown:  # ase's Calculator base would store an unknown parameter and ignore it
            raise AutopotError(f"bad arguments for emt: unknown {unknown[0]!r}; known: "
                               f"{', '.join(EMT.default_parameters)}", field="calculator.kwargs")
        return _construct(EMT, name, kwargs)
    if low == "eam":
        from ase.calculators.eam import EAM

        pot, field = _input_file(spec, low)
        try:
            return EAM(potential=str(pot), **kwargs)
        except TypeError as exc:
            raise AutopotError(f"bad arguments for eam: {exc}", field="calculator.kwargs") from None
        except Exception as exc:  # noqa: BLE001 - ASE's EAM reader raises many types on a bad file
            raise AutopotError(f"cannot read EAM potential: {type(exc).__name__}: {exc}",
                               file=pot, field=field) from None
    if low == "vasp":
        return _vasp(spec, Path(directory), kwargs)
    return _by_import_path(name.strip(), kwargs)


def _input_file(spec: dict[str, Any], calculator: str) -> tuple[Path, str]:
    """The calculator's input file and the spec field it came from.

    ``potential``/``incar`` win over ``pot_fname``; if both name files, they must have the
    same content (sp_calc passes a staged copy as ``pot_fname``), otherwise which one was
    used would be a guess.
    """
    own = _FILE_FIELD[calculator]
    named = [(f, spec[f]) for f in (own, "pot_fname") if spec.get(f)]
    if not named:
        raise AutopotError(f"the {calculator} calculator needs a file", field=f"calculator.{own}")
    paths = []
    for field, value in named:
        if not isinstance(value, (str, Path)):
            raise AutopotError(f"expected a file path, got {type(value).__name__}", field=f"calculator.{field}")
        path = Path(value).expanduser()
        if not path.is_file():
            raise AutopotError("file not found", file=path, field=f"calculator.{field}")
        paths.append((path, f"calculator.{field}"))
    if len(paths) == 2 and paths[0][0].read_bytes() != paths[1][0].read_bytes():
        raise AutopotError(f"differs from calculator.pot_fname ({paths[1][0]}); give one file",
                           file=paths[0][0], field=paths[0][1])
    return paths[0]


def _vasp(spec: dict[str, Any], directory: Path, kwargs: dict[str, Any]) -> BaseCalculator:
    """ASE's Vasp with every INCAR tag taken from the given file (the paper's ``pot_fname``).

    ``Vasp.read_incar`` is ASE's own INCAR reader, so the INCAR ASE writes is the user's
    INCAR re-serialised. Other spec keys (kpts, kspacing, setups, pp, xc, ...) are ASE
    keyword arguments applied *after* the file, so an explicit run-space setting wins.
    VASP is found by ASE from ASE_VASP_COMMAND/VASP_COMMAND and POTCARs from VASP_PP_PATH.
    """
    from ase.calculators.vasp import Vasp

    incar, field = _input_file(spec, "vasp")
    text = incar.read_text(errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].split("!", 1)[0]
        if ";" in body:  # ASE reads one tag per line; the rest would be silently mangled
            raise AutopotError(f"line {number}: several tags on one line (';'); put one tag per line",
                               file=incar, field=field)
    settings = {k: v for k, v in spec.items() if k not in _RESERVED}
    try:
        calc = Vasp(directory=str(directory))
        calc.read_incar(str(incar))
    except Exception as exc:  # noqa: BLE001 - ASE raises Key/Index/ValueError for a bad INCAR
        raise AutopotError(f"cannot read INCAR: {exc}", file=incar, field=field) from None
    for key, value in {**settings, **kwargs}.items():
        try:
            calc.set(**{key: value})
        except Exception as exc:  # noqa: BLE001 - ASE rejects unknown/ill-typed settings variously
            where = "kwargs" if key in kwargs else key
            raise AutopotError(f"rejected by ase's Vasp: {exc}", field=f"calculator.{where}") from None
    return calc


def _by_import_path(name: str, kwargs: dict[str, Any]) -> Any:
    """``module:Class`` or ``module.Class``: any ASE-compatible calculator class."""
    module_name, sep, attr = name.partition(":")
    if not sep:
        module_name, _, attr = name.rpartition(".")
    if not module_name or not attr:
        raise AutopotError(f"unknown calculator {name!r}; use {', '.join(_BUILTIN)} or module:Class",
                           field="calculator.calculator")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # noqa: BLE001 - a broken module is as much a spec error as a missing one
        raise AutopotError(f"cannot import calculator {name!r}: {type(exc).__name__}: {exc}",
                           field="calculator.calculator") from None
    if not isinstance(cls, type):
        raise AutopotError(f"{name!r} is not a class", field="calculator.calculator")
    calc = _construct(cls, name, kwargs)
    if not callable(getattr(calc, "get_potential_energy", None)) and not callable(getattr(calc, "calculate", None)):
        raise AutopotError(f"{name!r} is not an ASE calculator", field="calculator.calculator")
    return calc


def _construct(cls: type, name: str, kwargs: dict[str, Any]) -> Any:
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise AutopotError(f"bad arguments for {name}: {exc}", field="calculator.kwargs") from None


def compute_single_point(atoms: Atoms, spec: dict[str, Any], directory: Path) -> Atoms:
    """Energy, forces and (where available) stress of ``atoms`` as a SinglePointCalculator
    on a copy: the result no longer depends on the calculator, its files or its process."""
    from ase.calculators.calculator import PropertyNotImplementedError
    from ase.calculators.singlepoint import SinglePointCalculator

    directory = Path(directory)
    calc = make_calculator(spec, directory=directory)  # all spec errors before any work
    directory.mkdir(parents=True, exist_ok=True)
    work = atoms.copy()
    work.calc = calc
    try:
        energy = work.get_potential_energy()
        forces = work.get_forces()
    except Exception as exc:  # noqa: BLE001 - the calculator's failure is the run's cause
        raise AutopotError(f"{spec.get('calculator')} calculation failed: {type(exc).__name__}: {exc}",
                           file=directory, field="calculator") from exc
    if getattr(calc, "converged", True) is False:  # ase's Vasp: OUTCAR shows NELM reached
        raise AutopotError("electronic self-consistency did not converge (raise NELM or fix ALGO/EDIFF);"
                           " the result is not a reference", file=directory / "OUTCAR", field="calculator")
    results: dict[str, Any] = {"energy": energy, "forces": forces}
    if work.pbc.all():
        try:
            results["stress"] = work.get_stress()
        except PropertyNotImplementedError:  # e.g. LennardJones without stress support
            pass
        except Exception as exc:  # noqa: BLE001 - any other stress failure is a real failure
            raise AutopotError(f"{spec.get('calculator')} stress failed: {type(exc).__name__}: {exc}",
                               file=directory, field="calculator") from exc
    out = atoms.copy()
    out.calc = SinglePointCalculator(out, **results)
    return out


def read_vasp_result(directory: Path) -> Atoms:
    """Energy/forces/stress of a finished VASP run directory (vasprun.xml, else OUTCAR).

    For runs where VASP was started outside ASE (e.g. by a batch script) or to re-read a
    run directory later; :func:`compute_single_point` gets the same numbers from ASE's Vasp,
    which reads the same vasprun.xml and resorts the same way.

    vasprun.xml is preferred: it is complete XML, so a truncated run fails loudly instead of
    giving the last ionic step that happened to be written. If ASE wrote the inputs (its
    ``ase-sort.dat`` is present) atoms and forces are put back in the input order, since
    VASP sees them grouped by species.
    """
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import read

    directory = Path(directory)
    for name, fmt in (("vasprun.xml", "vasp-xml"), ("OUTCAR", "vasp-out")):
        path = directory / name
        if not path.is_file():
            continue
        try:
            atoms = read(path, index=-1, format=fmt)
            results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        except Exception as exc:  # noqa: BLE001 - truncated or foreign file
            raise AutopotError(f"cannot read VASP output: {type(exc).__name__}: {exc}", file=path) from None
        try:
            results["stress"] = atoms.get_stress()
        except Exception:  # noqa: BLE001 - ISIF=0 runs have no stress
            pass
        resort = _ase_resort(directory, len(atoms))
        if resort is not None:
            atoms = atoms[resort]
            results["forces"] = results["forces"][resort]
        atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms
    raise AutopotError("no vasprun.xml or OUTCAR: VASP did not finish here", file=directory)


def _ase_resort(directory: Path, natoms: int) -> np.ndarray | None:
    path = directory / "ase-sort.dat"
    if not path.is_file():
        return None
    try:
        table = np.loadtxt(path, dtype=int, ndmin=2)
    except ValueError as exc:
        raise AutopotError(f"unreadable: {exc}", file=path) from None
    if table.shape != (natoms, 2) or sorted(table[:, 1]) != list(range(natoms)):
        raise AutopotError(f"does not match the {natoms} atoms of the VASP output", file=path)
    return table[:, 1]
