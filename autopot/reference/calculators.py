"""Reference calculators for sp_calc: EMT, EAM, VASP, or any ASE calculator by import path.

A spec is the sp_calc run space's ``calculator`` dict::

    {"calculator": "emt"}
    {"calculator": "eam", "potential": "Cu_u3.eam"}
    {"calculator": "vasp", "incar": "INCAR", "kpts": [4, 4, 4], "setups": {...}, "pp": "PBE"}
    {"calculator": "ase.calculators.lj:LennardJones", "kwargs": {"sigma": 2.3}}
    {"calculator": "mtp", "potential": "pot.mtp", "atom_types": "Cu=0"}   # autopot/motep MTP

``pot_fname`` is accepted in place of ``potential``/``incar``: it is the AutoPot paper's
name, and sp_calc fills it from the job's ``pot_fname`` file. ``kwargs`` go to the
calculator's constructor for every calculator.

Everything is checked in :func:`make_calculator` before anything runs, so a typo in a
spec fails with one line naming the field rather than after a queue wait.

:func:`resolve_spec` turns what a user types into such a dict: ``"emt"``, a JSON object,
``module:Class``, a name from the model registry (``models.yaml``: ``emt-cu``), a train
run of a workflow (``train.6``: its pot.mtp and atom types) or a ``.mtp`` file.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autopot.errors import AutopotError, CalculationError

if TYPE_CHECKING:
    from ase import Atoms
    from ase.calculators.calculator import BaseCalculator

_BUILTIN = ("emt", "eam", "vasp", "mtp")
_FILE_FIELD = {"eam": "potential", "vasp": "incar", "mtp": "potential"}
_RESERVED = ("calculator", "kwargs", "pot_fname", "potential", "incar", "mpi")
#: spec keys that name input files (their sha256 is part of a simulation's identity)
FILE_FIELDS = ("potential", "pot_fname", "incar")


def _field(
    spec: dict[str, Any], name: str, kinds: type | tuple[type, ...], default: Any = None
) -> Any:
    value = spec.get(name, default)
    if value is not None and not isinstance(value, kinds):
        raise AutopotError(
            f"expected {getattr(kinds, '__name__', kinds)}, got {type(value).__name__}",
            field=f"calculator.{name}",
        )
    return value


def make_calculator(spec: dict[str, Any], *, directory: Path) -> BaseCalculator:
    """An ASE calculator for ``spec``; every file it names must exist and parse."""
    from autopot.reference.spec import calculator_name

    name = calculator_name(spec)
    kwargs = _field(spec, "kwargs", dict, {}) or {}
    low = name.strip().lower()
    if low in ("emt", "eam"):
        extra = sorted(k for k in spec if k not in _RESERVED)
        if extra:  # silently ignoring a setting would give a different potential than asked for
            raise AutopotError(
                f"unknown setting for {low} (put constructor arguments in kwargs)",
                field=f"calculator.{extra[0]}",
            )
    if low == "emt":
        from ase.calculators.emt import EMT

        unknown = sorted(set(kwargs) - set(EMT.default_parameters))
        if unknown:  # ase's Calculator base would store an unknown parameter and ignore it
            raise AutopotError(
                f"bad arguments for emt: unknown {unknown[0]!r}; known: "
                f"{', '.join(EMT.default_parameters)}",
                field="calculator.kwargs",
            )
        return _construct(EMT, name, kwargs)
    if low == "eam":
        from ase.calculators.eam import EAM

        pot, field = _input_file(spec, low)
        try:
            return EAM(potential=str(pot), **kwargs)
        except TypeError as exc:
            raise AutopotError(f"bad arguments for eam: {exc}", field="calculator.kwargs") from None
        except Exception as exc:  # noqa: BLE001 - ASE's EAM reader raises many types on a bad file
            raise AutopotError(
                f"cannot read EAM potential: {type(exc).__name__}: {exc}", file=pot, field=field
            ) from None
    if low == "vasp":
        return _vasp(spec, Path(directory), kwargs)
    if low == "mtp":
        return _mtp(spec, kwargs)
    return _by_import_path(name.strip(), kwargs)


def _mtp(spec: dict[str, Any], kwargs: dict[str, Any]) -> BaseCalculator:
    """An autopot (motep ``cext``) MTP: a trained .mtp file and its atom types."""
    extra = sorted(k for k in spec if k not in (*_RESERVED, "atom_types", "train_run"))
    if extra:
        raise AutopotError("unknown setting for mtp", field=f"calculator.{extra[0]}")
    pot, field = _input_file(spec, "mtp")
    types = spec.get("atom_types")
    if not isinstance(types, (str, dict)) or not types:
        raise AutopotError(
            "the mtp calculator needs atom_types, e.g. Cu=0 or {Cu: 0}",
            field="calculator.atom_types",
        )
    from motep.calculator import MTP

    from autopot.mtp.atom_types import parse_atom_types
    from autopot.mtp.backend import load_potential

    try:
        data = load_potential(pot, parse_atom_types(types))
    except AutopotError as exc:
        raise AutopotError(exc.message, file=exc.file or pot, field=field) from None
    try:
        return _resizable(MTP)(data, engine="cext", mode="run", **kwargs)
    except TypeError as exc:
        raise AutopotError(f"bad arguments for mtp: {exc}", field="calculator.kwargs") from None


@functools.cache
def _resizable(mtp_class: type) -> type:
    """motep's MTP keeps a neighbour list sized for the first structure it saw, so one
    calculator used on a relaxed cell and then on its supercell (phonons, stacking faults)
    failed with "Wrong number of cutoff radii"; a new one is built when the atoms change."""

    class ResizableMTP(mtp_class):
        def calculate(
            self, atoms: Any = None, properties: Any = None, system_changes: Any = None
        ) -> None:
            from ase.calculators.calculator import all_changes

            changes = all_changes if system_changes is None else system_changes
            if "numbers" in changes:
                self.engine.neighbor_list = None
            super().calculate(atoms, properties or ["energy"], changes)

    return ResizableMTP


def resolve_spec(
    spec: Any, *, workflow_dir: str | Path | None = None, base_dir: str | Path | None = None
) -> dict[str, Any]:
    """A calculator spec dict from what a user gave (see the module docstring).

    File paths become absolute (relative ones are taken from ``base_dir``, default the
    current directory), so the spec means the same from anywhere; registry names and
    train labels (of ``workflow_dir`` unless the spec names its ``workflow``) are
    expanded, so a stored spec says what actually ran.
    """
    import json
    import re

    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("{"):
            try:
                spec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise AutopotError(f"not a JSON object: {exc}", field="calculator") from None
        elif text.endswith(".mtp"):
            spec = {"calculator": "mtp", "potential": text}
        else:
            from autopot.reference.registry import lookup, names

            entry = lookup(text)
            if entry is not None:
                return resolve_spec(entry.spec, workflow_dir=workflow_dir, base_dir=entry.base_dir)
            if text.lower() not in _BUILTIN and "." not in text and ":" not in text:
                raise AutopotError(
                    f"unknown calculator or model {text!r}; built in: "
                    f"{', '.join(_BUILTIN)}; registry: {', '.join(names()) or 'empty'};"
                    " or module:Class, TASK.N, a .mtp file",
                    field="calculator",
                )
            spec = {"calculator": text}
    if not isinstance(spec, dict):
        raise AutopotError(
            f"expected a name or a mapping, got {type(spec).__name__}", field="calculator"
        )
    spec = dict(spec)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if isinstance(spec.get("workflow"), str):
        spec["workflow"] = str((base / Path(spec["workflow"]).expanduser()).resolve())
    name = spec.get("calculator")
    if (
        isinstance(name, str)
        and re.fullmatch(r"[A-Za-z_]\w*\.\d+", name.strip())
        and ":" not in name
    ):
        spec = _train_run_spec(name.strip(), spec, workflow_dir)
    elif isinstance(name, str) and name.strip().lower() in ("emt", "eam", "vasp", "mtp"):
        spec["calculator"] = name.strip().lower()
    for key in FILE_FIELDS:
        value = spec.get(key)
        if isinstance(value, str) and value:
            path = Path(value).expanduser()
            spec[key] = str(path if path.is_absolute() else (base / path).resolve())
    return spec


def _train_run_spec(
    label: str, spec: dict[str, Any], workflow_dir: str | Path | None
) -> dict[str, Any]:
    """``train.6`` → the MTP that train run produced, with its atom types."""
    from autopot.locate import resolve_workflow_dir
    from autopot.store.database import open_store
    from autopot.store.records import get_run
    from autopot.tasklib import POTENTIAL

    where = spec.pop("workflow", None) or workflow_dir
    directory = resolve_workflow_dir(where)
    if not (directory / "db").is_dir():
        raise AutopotError(
            f"no workflow database for {label} (give the workflow directory)",
            file=directory,
            field="calculator.workflow",
        )
    with open_store(directory, read_only=True) as store:
        run = get_run(store.root, label)
        if run.task != "train" or run.state != "FINISHED":
            raise AutopotError(
                f"{label} is a {run.state} {run.task} run, not a finished train run",
                field="calculator",
            )
        pot = directory / run.directory / POTENTIAL
        types = run.job.params.get("atom_types")
    extra = {k: v for k, v in spec.items() if k not in ("calculator",)}
    return {
        "calculator": "mtp",
        "potential": str(pot),
        "atom_types": types,
        "train_run": label,
        **extra,
    }


def spec_file_digests(spec: dict[str, Any]) -> dict[str, str]:
    """sha256 of every file a resolved spec names: same path, new content → new identity."""
    from autopot.store.files import sha256_file

    out = {}
    for key in FILE_FIELDS:
        value = spec.get(key)
        if isinstance(value, str) and value and Path(value).is_file():
            out[key] = sha256_file(value)
    return out


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
            raise AutopotError(
                f"expected a file path, got {type(value).__name__}", field=f"calculator.{field}"
            )
        path = Path(value).expanduser()
        if not path.is_file():
            raise AutopotError("file not found", file=path, field=f"calculator.{field}")
        paths.append((path, f"calculator.{field}"))
    if len(paths) == 2 and paths[0][0].read_bytes() != paths[1][0].read_bytes():
        raise AutopotError(
            f"differs from calculator.pot_fname ({paths[1][0]}); give one file",
            file=paths[0][0],
            field=paths[0][1],
        )
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
    raw = incar.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if not text.strip() or "\0" in text:  # garbage is not "several tags on one line"
        raise AutopotError(
            "not an INCAR (empty, binary or not UTF-8 text)" if raw.strip() else "empty INCAR",
            file=incar,
            field=field,
        )
    for number, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].split("!", 1)[0]
        if ";" in body:  # ASE reads one tag per line; the rest would be silently mangled
            raise AutopotError(
                f"line {number}: several tags on one line (';'); put one tag per line",
                file=incar,
                field=field,
            )
    settings = {k: v for k, v in spec.items() if k not in _RESERVED}
    command = mpi_command(spec.get("mpi"))
    try:
        calc = Vasp(directory=str(directory), **({"command": command} if command else {}))
        calc.read_incar(str(incar))
    except Exception as exc:  # noqa: BLE001 - ASE raises Key/Index/ValueError for a bad INCAR
        raise AutopotError(f"cannot read INCAR: {exc}", file=incar, field=field) from None
    for key, value in {**settings, **kwargs}.items():
        try:
            calc.set(**{key: value})
        except Exception as exc:  # noqa: BLE001 - ASE rejects unknown/ill-typed settings variously
            where = "kwargs" if key in kwargs else key
            raise AutopotError(
                f"rejected by ase's Vasp: {exc}", field=f"calculator.{where}"
            ) from None
    return calc


_LAUNCHERS = ("srun", "mpirun", "mpiexec")


def mpi_command(mpi: Any, environ: Mapping[str, str] | None = None) -> str | None:
    """VASP's MPI launch line from the spec's ``mpi`` mapping (None: ASE's default,
    ``ASE_VASP_COMMAND``): ``{launcher: srun|mpirun|mpiexec, ntasks: N, executable: vasp_std}``.

    ``ntasks`` defaults to the job's ``$SLURM_NTASKS`` (what ``slurm_options.ntasks`` asked
    for), ``executable`` to ``$VASP_EXECUTABLE`` or ``vasp_std``. Every part is checked and
    the line is quoted, so no spec value is ever interpreted by the shell ASE runs it in.
    """
    import os
    import re
    import shlex

    if mpi is None:
        return None
    if not isinstance(mpi, dict):
        raise AutopotError(f"expected a mapping, got {type(mpi).__name__}", field="calculator.mpi")
    env = os.environ if environ is None else environ
    unknown = sorted(set(mpi) - {"launcher", "ntasks", "executable"})
    if unknown:
        raise AutopotError(
            "unknown key (launcher, ntasks, executable)", field=f"calculator.mpi.{unknown[0]}"
        )
    launcher = mpi.get("launcher", "srun")
    if launcher not in _LAUNCHERS:
        raise AutopotError(
            f"expected one of {', '.join(_LAUNCHERS)}, got {launcher!r}",
            field="calculator.mpi.launcher",
        )
    ntasks = mpi.get("ntasks", env.get("SLURM_NTASKS") or 1)
    try:
        n = int(ntasks)
    except (TypeError, ValueError):
        n = 0
    if isinstance(ntasks, bool) or n < 1:
        raise AutopotError(
            f"expected a positive integer, got {ntasks!r}", field="calculator.mpi.ntasks"
        )
    executable = mpi.get("executable") or env.get("VASP_EXECUTABLE") or "vasp_std"
    if not isinstance(executable, str) or not re.fullmatch(r"[A-Za-z0-9_./+-]+", executable):
        raise AutopotError(
            f"expected a program name or path, got {executable!r}",
            field="calculator.mpi.executable",
        )
    return shlex.join([launcher, "-n", str(n), executable])


def _by_import_path(name: str, kwargs: dict[str, Any]) -> Any:
    """``module:Class`` or ``module.Class``: any ASE-compatible calculator class."""
    module_name, sep, attr = name.partition(":")
    if not sep:
        module_name, _, attr = name.rpartition(".")
    if not module_name or not attr:
        raise AutopotError(
            f"unknown calculator {name!r}; use {', '.join(_BUILTIN)} or module:Class",
            field="calculator.calculator",
        )
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # noqa: BLE001 - a broken module is as much a spec error as a missing one
        raise AutopotError(
            f"cannot import calculator {name!r}: {type(exc).__name__}: {exc}",
            field="calculator.calculator",
        ) from None
    if not isinstance(cls, type):
        raise AutopotError(f"{name!r} is not a class", field="calculator.calculator")
    calc = _construct(cls, name, kwargs)
    if not callable(getattr(calc, "get_potential_energy", None)) and not callable(
        getattr(calc, "calculate", None)
    ):
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
        raise CalculationError(
            f"{spec.get('calculator')} calculation failed: {type(exc).__name__}: {exc}",
            file=directory,
            field="calculator",
        ) from exc
    if getattr(calc, "converged", True) is False:  # ase's Vasp: OUTCAR shows NELM reached
        raise CalculationError(
            "electronic self-consistency did not converge (raise NELM or fix ALGO/EDIFF);"
            " the result is not a reference",
            file=directory / "OUTCAR",
            field="calculator",
        )
    results: dict[str, Any] = {"energy": energy, "forces": forces}
    if work.pbc.all():
        try:
            results["stress"] = work.get_stress()
        except PropertyNotImplementedError:  # e.g. LennardJones without stress support
            pass
        except Exception as exc:  # noqa: BLE001 - any other stress failure is a real failure
            raise CalculationError(
                f"{spec.get('calculator')} stress failed: {type(exc).__name__}: {exc}",
                file=directory,
                field="calculator",
            ) from exc
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
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import read

    directory = Path(directory)
    for name, fmt in (("vasprun.xml", "vasp-xml"), ("OUTCAR", "vasp-out")):
        path = directory / name
        if not path.is_file():
            continue
        try:
            read_back = read(path, index=-1, format=fmt)
            assert isinstance(read_back, Atoms)  # index=-1: one configuration
            atoms = read_back
            results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        except Exception as exc:  # noqa: BLE001 - truncated or foreign file
            raise AutopotError(
                f"cannot read VASP output: {type(exc).__name__}: {exc}", file=path
            ) from None
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
