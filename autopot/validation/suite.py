"""Validation suites: which properties, on which structure, with what tolerance.

A suite is YAML (``suites/<family>.yaml`` ship with autopot; a user file is merged over
the default of its ``family``). Everything is checked when loaded, so a typo costs one
line naming the file and the key, before any simulation is submitted.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autopot.errors import AutopotError

if TYPE_CHECKING:
    from ase import Atoms

SUITES = Path(__file__).with_name("suites")
#: simulations a property may come from (``from: <simulation>.<result key>``)
SIMULATIONS = ("eos", "elasticity", "sfe", "vacancy", "phonon")
HELDOUT = "heldout"
HELDOUT_KEYS = (
    "energy_rmse_per_atom",
    "energy_mae_per_atom",
    "forces_rmse",
    "forces_mae",
    "stress_rmse",
    "stress_mae",
)
_TOP = {"family", "structure", "simulations", "heldout", "properties"}
_HELDOUT_DEFAULTS: dict[str, Any] = {
    "temperatures": [1.0, 1.5],
    "supercell": [2, 2, 2],
    "steps": 200,
    "timestep_fs": 2.0,
    "interval": 10,
    "equilibration": 40,
}


class SuiteError(AutopotError):
    """A validation suite file is malformed (bad input: exit 2)."""


@dataclass(frozen=True)
class Property:
    """One row of the table: where its value comes from and when it passes."""

    name: str
    simulation: str  # one of SIMULATIONS, or "heldout"
    key: str
    unit: str = ""
    scale: float = 1.0
    relative: float | None = None
    absolute: float | None = None

    def passes(self, value: float | None, reference: float | None) -> bool | None:
        """|value - reference| <= max(relative·|reference|, absolute); None without data.

        Held-out errors have no reference value: the error itself is compared with
        ``absolute``.
        """
        if value is None or not math.isfinite(value):
            return None if value is None else False
        if self.simulation == HELDOUT:
            return self.absolute is not None and abs(value) <= self.absolute
        if reference is None or not math.isfinite(reference):
            return None
        allowed = max(
            (self.relative or 0.0) * abs(reference),
            self.absolute or 0.0,
        )
        return abs(value - reference) <= allowed

    def tolerance_text(self) -> str:
        parts = []
        if self.relative is not None:
            parts.append(f"{self.relative * 100:g} %")
        if self.absolute is not None:
            parts.append(f"{self.absolute:g} {self.unit}".strip())
        return " or ".join(parts)


@dataclass
class Suite:
    family: str
    source: str  # the files it was read from (default, user)
    structure: dict[str, Any]
    simulations: dict[str, dict[str, Any]]
    heldout: dict[str, Any]
    properties: list[Property]
    base_dir: Path = field(default_factory=Path.cwd)

    def needed(self) -> list[str]:
        """Simulations the properties use, in suite order."""
        wanted = {p.simulation for p in self.properties}
        return [s for s in SIMULATIONS if s in wanted]

    @property
    def wants_heldout(self) -> bool:
        return any(p.simulation == HELDOUT for p in self.properties)

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "source": self.source,
            "structure": self.structure,
            "simulations": self.simulations,
            "heldout": self.heldout,
            "properties": {
                p.name: {
                    "from": f"{p.simulation}.{p.key}",
                    "unit": p.unit,
                    "scale": p.scale,
                    "tolerance": {
                        k: v
                        for k, v in (("relative", p.relative), ("absolute", p.absolute))
                        if v is not None
                    },
                }
                for p in self.properties
            },
        }

    # ------------------------------------------------------------------ the structure
    def bulk(self, atom_types: str) -> Atoms:
        """The crystal every simulation starts from (the workflow's element, or a file)."""
        from ase.build import bulk

        where = f"{self.source}: structure"
        if "file" in self.structure:
            from autopot.simulate.common import read_structure

            path = Path(self.structure["file"])
            path = path if path.is_absolute() else self.base_dir / path
            return read_structure(str(path), field="structure.file")
        species = _species(atom_types)
        if len(species) != 1:
            raise SuiteError(
                f"builds an elemental crystal but the workflow has {len(species)} species "
                f"({atom_types}); give structure.file",
                file=self.source,
                field="structure",
            )
        lattice = self.structure.get("lattice", self.family)
        a = self.structure.get("a")
        try:
            if a is None:
                return bulk(species[0], lattice, cubic=True)
            return bulk(species[0], lattice, a=float(a), cubic=True)
        except Exception as exc:  # noqa: BLE001 - ASE raises several types for unknown data
            raise SuiteError(
                f"cannot build {lattice} {species[0]}: {exc}", field=where.split(": ")[-1]
            ) from None


def _species(atom_types: str) -> list[str]:
    from autopot.mtp.atom_types import parse_atom_types

    return list(parse_atom_types(atom_types))


def family_of(atom_types: str) -> str | None:
    """The crystal family ASE's reference data gives the workflow's element (None: several
    species, or a structure autopot ships no suite for)."""
    from ase.data import atomic_numbers, reference_states

    species = _species(atom_types)
    if len(species) != 1:
        return None
    state = reference_states[atomic_numbers[species[0]]] or {}
    family = state.get("symmetry")
    return str(family) if family and (SUITES / f"{family}.yaml").is_file() else None


def shipped() -> list[str]:
    return sorted(p.stem for p in SUITES.glob("*.yaml"))


def load_suite(
    path: str | Path | None = None, *, family: str | None = None, atom_types: str | None = None
) -> Suite:
    """The suite of ``path`` merged over its family's default, or the default of ``family``
    (else the family of ``atom_types``'s element). One-line errors name file and key."""
    from autopot.yamlfile import read_yaml_mapping

    user: dict[str, Any] = {}
    user_path: Path | None = None
    if path is not None:
        user_path = Path(path).expanduser().resolve()
        if not user_path.is_file():
            raise SuiteError("file not found", file=user_path, field="validation_suite")
        user = read_yaml_mapping(user_path, SuiteError)
        unknown = sorted(set(user) - _TOP)
        if unknown:
            raise SuiteError(
                f"unknown key; use {', '.join(sorted(_TOP))}", file=user_path, field=unknown[0]
            )
        family = user.get("family", family)
    if family is None and atom_types is not None:
        family = family_of(atom_types)
    if family is None:
        raise SuiteError(
            "cannot tell the crystal family; set `family:` in the suite "
            f"(shipped: {', '.join(shipped())})",
            file=user_path,
            field="family",
        )
    default_path = SUITES / f"{family}.yaml"
    if not default_path.is_file():
        if user_path is None:
            raise SuiteError(
                f"no shipped suite for {family!r} (shipped: {', '.join(shipped())})",
                field="family",
            )
        data: dict[str, Any] = {}
        source = str(user_path)
    else:
        data = read_yaml_mapping(default_path, SuiteError)
        source = str(default_path) if user_path is None else f"{user_path} (over {default_path})"
    data = _merge(data, user)
    where = user_path if user_path is not None else default_path
    return _parse(data, where, source, user_path.parent if user_path else SUITES)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            merged = dict(out[key])
            for k, v in value.items():
                if key == "simulations" and isinstance(v, dict) and isinstance(merged.get(k), dict):
                    merged[k] = {**merged[k], **v}
                else:
                    merged[k] = v
            out[key] = {k: v for k, v in merged.items() if v is not None}
        else:
            out[key] = value
    return out


def _parse(data: dict[str, Any], file: Path, source: str, base_dir: Path) -> Suite:
    def fail(message: str, key: str) -> SuiteError:
        return SuiteError(message, file=file, field=key)

    family = data.get("family")
    if not isinstance(family, str) or not family:
        raise fail("expected a crystal family name, e.g. fcc", "family")
    structure = data.get("structure") or {}
    if not isinstance(structure, dict) or set(structure) - {"lattice", "a", "file"}:
        raise fail("expected {lattice: ..., a: ...} or {file: ...}", "structure")
    if "a" in structure and not _positive(structure["a"]):
        raise fail("expected a positive lattice constant in A", "structure.a")
    if "file" in structure:
        path = Path(str(structure["file"])).expanduser()
        path = path if path.is_absolute() else base_dir / path
        if not path.is_file():
            raise fail(f"file not found: {path}", "structure.file")
        structure = {**structure, "file": str(path)}
    sims = data.get("simulations") or {}
    if not isinstance(sims, dict):
        raise fail("expected a mapping of simulation parameters", "simulations")
    simulations: dict[str, dict[str, Any]] = {}
    for name, params in sims.items():
        if name not in SIMULATIONS:
            raise fail(f"unknown simulation; use {', '.join(SIMULATIONS)}", f"simulations.{name}")
        if not isinstance(params, dict):
            raise fail("expected a mapping of parameters", f"simulations.{name}")
        from autopot.simulate.api import _check_params

        try:
            _check_params(name, dict(params))  # the simulation's own checks, named here
        except AutopotError as exc:
            raise fail(exc.message, f"simulations.{name}.{exc.field}") from None
        simulations[name] = dict(params)
    heldout = {**_HELDOUT_DEFAULTS, **(data.get("heldout") or {})}
    unknown = sorted(set(heldout) - set(_HELDOUT_DEFAULTS))
    if unknown:
        raise fail(f"unknown key; use {', '.join(_HELDOUT_DEFAULTS)}", f"heldout.{unknown[0]}")
    temps = heldout["temperatures"]
    if not isinstance(temps, list) or not temps or not all(_positive(t) for t in temps):
        raise fail(
            "expected a list of positive multiples of the training temperature",
            "heldout.temperatures",
        )
    for key in ("steps", "interval"):
        if not isinstance(heldout[key], int) or heldout[key] < 1:
            raise fail("expected a positive integer", f"heldout.{key}")
    if (
        not isinstance(heldout["equilibration"], int)
        or not 0 <= heldout["equilibration"] < heldout["steps"]
    ):
        raise fail("expected an integer in [0, steps)", "heldout.equilibration")
    if not _positive(heldout["timestep_fs"]):
        raise fail("expected a positive number", "heldout.timestep_fs")
    sc = heldout["supercell"]
    if not (
        isinstance(sc, list) and len(sc) == 3 and all(isinstance(v, int) and v > 0 for v in sc)
    ):
        raise fail("expected 3 positive integers", "heldout.supercell")
    props = data.get("properties")
    if not isinstance(props, dict) or not props:
        raise fail("expected a mapping of properties", "properties")
    properties = [_property(name, spec, fail) for name, spec in props.items() if spec is not None]
    return Suite(family, source, structure, simulations, heldout, properties, base_dir)


def _property(name: str, spec: Any, fail: Any) -> Property:
    where = f"properties.{name}"
    if not isinstance(spec, dict):
        raise fail("expected {from: simulation.key, tolerance: {...}}", where)
    unknown = sorted(set(spec) - {"from", "unit", "scale", "tolerance"})
    if unknown:
        raise fail("unknown key; use from, unit, scale, tolerance", f"{where}.{unknown[0]}")
    source = spec.get("from")
    simulation, _, key = str(source or "").partition(".")
    if simulation not in (*SIMULATIONS, HELDOUT) or not key:
        raise fail(
            f"expected <simulation>.<result key> with simulation in {', '.join((*SIMULATIONS, HELDOUT))}",
            f"{where}.from",
        )
    if simulation == HELDOUT and key not in HELDOUT_KEYS:
        raise fail(f"unknown held-out error; use {', '.join(HELDOUT_KEYS)}", f"{where}.from")
    tol = spec.get("tolerance")
    if not isinstance(tol, dict) or not tol or set(tol) - {"relative", "absolute"}:
        raise fail("expected {relative: 0.1} and/or {absolute: ...}", f"{where}.tolerance")
    for k, v in tol.items():
        if not _positive(v):
            raise fail("expected a positive number", f"{where}.tolerance.{k}")
    if simulation == HELDOUT and "absolute" not in tol:
        raise fail("a held-out error needs an absolute tolerance", f"{where}.tolerance")
    scale = spec.get("scale", 1.0)
    if not _positive(scale):
        raise fail("expected a positive number", f"{where}.scale")
    return Property(
        name=str(name),
        simulation=simulation,
        key=key,
        unit=str(spec.get("unit", "")),
        scale=float(scale),
        relative=float(tol["relative"]) if "relative" in tol else None,
        absolute=float(tol["absolute"]) if "absolute" in tol else None,
    )


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
