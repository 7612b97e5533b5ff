"""Task-type schemas read from a template's ``bd.yaml``.

A task type declares a typed *job space* (the scientific parameters: one job per point)
and a typed *run space* (how one execution runs: calculator, SLURM options, ...), as
BlackDynamite's bd.yaml does (AutoPot paper, Figure 2). Every value is validated here,
before anything reaches the database, so a typo never becomes a stored job.

Accepted forms of a parameter in bd.yaml::

    job:
      cfg_fname: str                         # short form
      grade: {type: float, default: 2.0, min: 1.0, doc: "extrapolation threshold"}
      pot_fname: {type: str, file: true}     # a path copied into the run directory
      md_args:                               # a dict parameter declares its keys
        type: dict
        keys:
          temperature_K: {type: float, default: 600.0, min: 0, unit: K, doc: "..."}
          ensemble: {type: str, default: nvt, choices: [nve, nvt]}
    run:
      calculator: {type: dict, check: "autopot.reference:check_spec"}   # checked by a function

A dict parameter with ``keys`` refuses unknown keys (``task.md_args.temprature_K``) and
fills each key's default, so every default lives in exactly one place: here. A dict
without ``keys`` must name a ``check`` function (``module:function``, value -> value,
raising AutopotError) or say ``open: true`` (free-form, e.g. constructor kwargs checked
by the constructor itself).
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autopot.errors import SchemaError

TYPES: dict[str, type] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list": list,
    "dict": dict,
}

_MISSING = object()
#: Files never part of a template's identity (caches, editor droppings).
_IGNORED_PARTS = {"__pycache__", ".pytest_cache"}
_IGNORED_SUFFIXES = {".pyc", ".pyo", ".swp"}


@dataclass(frozen=True)
class Param:
    """One typed parameter of a job or run space (or one key of a dict parameter)."""

    name: str
    type: str
    default: Any = _MISSING
    doc: str = ""
    file: bool = False  # value names input file(s) copied into the run directory
    #: suffixes of optional files beside a file input (``pot.mtp`` + ``.als.npz``): copied
    #: along when present, so a run reuses what the run that wrote the input computed
    companions: tuple[str, ...] = ()
    unit: str = ""
    min: float | None = None  # inclusive bounds of int/float values
    max: float | None = None
    gt: float | None = None  # exclusive lower bound (a time step must be > 0)
    choices: tuple[Any, ...] | None = None
    keys: dict[str, Param] | None = None  # the keys of a dict parameter
    check_fn: str = ""  # "module:function" validating a dict without declared keys
    open: bool = False  # a free-form dict (checked by whoever consumes it)
    items: str = ""  # element type of a list parameter

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def check(self, value: Any, *, where: str, section: str = "") -> Any:
        """Return ``value`` converted to the canonical Python type, or raise.

        ``section`` is the dotted path of the parameter's parent (``job``,
        ``md_select.md_args``) used in the error's field name.
        """
        expected = TYPES[self.type]
        name = f"{section}.{self.name}" if section else self.name
        if value is None and not self.required and self.default is None:
            return None
        if self.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.type in ("int", "float") and isinstance(value, bool):
            raise SchemaError(f"expected {self.type}, got bool {value!r}", file=where, field=name)
        if not isinstance(value, expected):
            raise SchemaError(
                f"expected {self.type}, got {type(value).__name__} {value!r}",
                file=where,
                field=name,
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise SchemaError(f"expected a finite float, got {value!r}", file=where, field=name)
        self._check_range(value, where, name)
        if isinstance(value, list) and self.items:
            for k, item in enumerate(value):
                if not isinstance(item, TYPES[self.items]) or isinstance(item, bool) != (
                    self.items == "bool"
                ):
                    raise SchemaError(
                        f"item {k}: expected {self.items}, got {type(item).__name__} {item!r}",
                        file=where,
                        field=name,
                    )
        if isinstance(value, dict):
            value = self._check_dict(value, where, name)
        return value

    def _check_range(self, value: Any, where: str, name: str) -> None:
        unit = f" {self.unit}" if self.unit else ""
        if self.choices is not None and value not in self.choices:
            raise SchemaError(
                f"{value!r} is not one of {', '.join(map(repr, self.choices))}",
                file=where,
                field=name,
            )
        if self.min is not None and value < self.min:
            raise SchemaError(
                f"{value!r}{unit} is below the minimum {self.min:g}{unit}", file=where, field=name
            )
        if self.max is not None and value > self.max:
            raise SchemaError(
                f"{value!r}{unit} is above the maximum {self.max:g}{unit}", file=where, field=name
            )
        if self.gt is not None and value <= self.gt:
            raise SchemaError(
                f"{value!r}{unit} must be greater than {self.gt:g}{unit}", file=where, field=name
            )

    def _check_dict(self, value: dict[str, Any], where: str, name: str) -> dict[str, Any]:
        if self.keys is not None:
            unknown = sorted(set(value) - set(self.keys), key=str)
            if unknown:
                bad = unknown[0]
                hint = difflib.get_close_matches(str(bad), list(self.keys), n=1)
                raise SchemaError(
                    f"unknown key {bad!r}"
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                    + f"; known: {', '.join(self.keys) or 'none'}",
                    file=where,
                    field=f"{name}.{bad}",
                )
            out: dict[str, Any] = {}
            for key, sub in self.keys.items():
                if key in value:
                    out[key] = sub.check(value[key], where=where, section=name)
                elif sub.required:
                    raise SchemaError("required key is missing", file=where, field=f"{name}.{key}")
                else:
                    out[key] = _copy_default(sub.default)
            return out
        if self.check_fn:
            from autopot.errors import AutopotError

            try:
                return resolve_check(self.check_fn)(value)
            except AutopotError as exc:
                field_name = exc.field or ""
                if not field_name.startswith(self.name):
                    field_name = f"{self.name}.{field_name}" if field_name else self.name
                prefix = section_of(name, self.name)
                raise SchemaError(
                    exc.message, file=exc.file or where, field=f"{prefix}{field_name}"
                ) from None
        return value

    def full_default(self) -> Any:
        """The default with every key filled (a dict's keys, or its check function, carry
        the defaults of its keys)."""
        if self.keys is not None or (self.check_fn and not self.required):
            base = {} if self.default is _MISSING or self.default is None else self.default
            return self.check(base, where="", section="")
        return _copy_default(self.default)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if not self.required:
            out["default"] = self.default
        for key in ("doc", "file", "unit", "min", "max", "gt", "open", "items"):
            value = getattr(self, key)
            if value not in ("", None, False):
                out[key] = value
        if self.choices is not None:
            out["choices"] = list(self.choices)
        if self.check_fn:
            out["check"] = self.check_fn
        if self.companions:
            out["companions"] = list(self.companions)
        if self.keys is not None:
            out["keys"] = {k: p.to_dict() for k, p in self.keys.items()}
        return out


def section_of(full_name: str, name: str) -> str:
    """``"job.md_args"`` minus its last part, with a trailing dot (``"job."``)."""
    return full_name[: len(full_name) - len(name)]


def resolve_check(target: str) -> Any:
    """The ``module:function`` named by a dict parameter's ``check``."""
    import pkgutil

    try:
        return pkgutil.resolve_name(target)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SchemaError(
            f"cannot import check function {target!r}: {exc}", field="check"
        ) from None


_SPEC_KEYS = {
    "type",
    "default",
    "doc",
    "file",
    "unit",
    "min",
    "max",
    "gt",
    "choices",
    "keys",
    "check",
    "open",
    "items",
    "companions",
}


def _parse_param(name: str, spec: Any, source: str, section: str) -> Param:
    where = f"{section}.{name}"
    if not isinstance(name, str) or not name.isidentifier():
        raise SchemaError(f"parameter name {name!r} is not an identifier", file=source, field=where)
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        raise SchemaError(
            f"expected a type name or a mapping, got {type(spec).__name__}",
            file=source,
            field=where,
        )
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise SchemaError(f"unknown key(s) {sorted(unknown)}", file=source, field=where)
    type_name = spec.get("type")
    if type_name not in TYPES:
        raise SchemaError(
            f"unknown type {type_name!r}; use one of {', '.join(TYPES)}", file=source, field=where
        )
    for bound in ("min", "max", "gt"):
        value = spec.get(bound)
        if value is not None and (
            type_name not in ("int", "float")
            or isinstance(value, bool)
            or not isinstance(value, int | float)
        ):
            raise SchemaError(
                f"{bound} needs a number and an int/float parameter",
                file=source,
                field=f"{where}.{bound}",
            )
    choices = spec.get("choices")
    if choices is not None and not isinstance(choices, list):
        raise SchemaError(
            "expected a list of allowed values", file=source, field=f"{where}.choices"
        )
    items = spec.get("items", "")
    if items and (type_name != "list" or items not in TYPES):
        raise SchemaError(
            f"items needs a list parameter and a type of {', '.join(TYPES)}",
            file=source,
            field=f"{where}.items",
        )
    keys = None
    raw_keys = spec.get("keys")
    check_fn = spec.get("check", "")
    if type_name == "dict":
        if raw_keys is not None:
            if not isinstance(raw_keys, dict):
                raise SchemaError("expected a mapping of keys", file=source, field=f"{where}.keys")
            keys = {k: _parse_param(k, v, source, where) for k, v in raw_keys.items()}
        elif not check_fn and not spec.get("open"):
            raise SchemaError(
                "a dict parameter declares its keys (or a check function, or open: true)",
                file=source,
                field=where,
            )
        if check_fn and (not isinstance(check_fn, str) or ":" not in check_fn):
            raise SchemaError("expected module:function", file=source, field=f"{where}.check")
    elif raw_keys is not None or check_fn:
        raise SchemaError("keys/check are for dict parameters", file=source, field=where)
    companions = spec.get("companions", [])
    if companions and (
        not spec.get("file")
        or not isinstance(companions, list)
        or not all(
            isinstance(c, str) and c.startswith(".") and "/" not in c and len(c) > 1
            for c in companions
        )
    ):
        raise SchemaError(
            "companions needs file: true and a list of suffixes such as .als.npz",
            file=source,
            field=f"{where}.companions",
        )
    param = Param(
        name=name,
        type=type_name,
        default=spec.get("default", _MISSING),
        doc=str(spec.get("doc", "")),
        file=bool(spec.get("file", False)),
        unit=str(spec.get("unit", "")),
        min=spec.get("min"),
        max=spec.get("max"),
        gt=spec.get("gt"),
        choices=tuple(choices) if choices is not None else None,
        keys=keys,
        check_fn=check_fn,
        open=bool(spec.get("open", False)),
        items=items,
        companions=tuple(companions),
    )
    if keys is not None and not param.required and param.default not in ({}, None):
        raise SchemaError(
            "a dict with keys takes its defaults from the keys; use default: {}",
            file=source,
            field=f"{where}.default",
        )
    if not param.required and param.default is not None and not check_fn:
        param.check(param.default, where=source, section=section)
    return param


@dataclass
class TaskSchema:
    """The typed job and run spaces of one task type, plus its template's identity."""

    name: str
    template_dir: Path
    job: dict[str, Param]
    run: dict[str, Param]
    files: list[str]
    description: str = ""
    source_hash: str = ""
    source: str = ""  # path of the bd.yaml, for error messages
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, template_dir: str | Path) -> TaskSchema:
        """Read ``template_dir/bd.yaml`` and hash the template's source files."""
        from autopot.yamlfile import read_yaml_mapping

        template_dir = Path(template_dir).resolve()
        bd = template_dir / "bd.yaml"
        if not template_dir.is_dir():
            raise SchemaError("task template directory not found", file=template_dir)
        if not bd.is_file():
            raise SchemaError("missing bd.yaml in task template", file=bd)
        data = read_yaml_mapping(bd, SchemaError)
        allowed = {"task", "study", "description", "job", "run", "files", "exec_file"}
        unknown = set(data) - allowed
        if unknown:
            raise SchemaError(
                f"unknown key(s) {sorted(unknown)}", file=bd, field=sorted(unknown)[0]
            )
        name = data.get("task", data.get("study", template_dir.name))
        if not isinstance(name, str) or not name.isidentifier():
            raise SchemaError(f"task name {name!r} is not an identifier", file=bd, field="task")
        if "job" not in data:
            raise SchemaError(
                "missing the job: section (the typed job space)", file=bd, field="job"
            )
        sections: dict[str, dict[str, Param]] = {}
        for section in ("job", "run"):
            raw = data.get(section) or {}
            if not isinstance(raw, dict):
                raise SchemaError("expected a mapping of parameters", file=bd, field=section)
            sections[section] = {k: _parse_param(k, v, str(bd), section) for k, v in raw.items()}
        clash = set(sections["job"]) & set(sections["run"])
        if clash:
            raise SchemaError(
                f"declared in both job and run spaces: {sorted(clash)}", file=bd, field="run"
            )
        files = data.get("files", ["run.sh", "doIt.py"])
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise SchemaError("expected a list of file names", file=bd, field="files")
        for fname in files:
            if not (template_dir / fname).is_file():
                raise SchemaError(
                    "template file listed in bd.yaml is missing",
                    file=template_dir / fname,
                    field="files",
                )
        schema = cls(
            name=name,
            template_dir=template_dir,
            job=sections["job"],
            run=sections["run"],
            files=files,
            description=str(data.get("description", "")),
            source=str(bd),
        )
        schema.source_hash = template_source_hash(template_dir)
        return schema

    # ------------------------------------------------------------------ validation
    def _validate(
        self, space: dict[str, Param], values: dict[str, Any], section: str
    ) -> dict[str, Any]:
        unknown = set(values) - set(space)
        if unknown:
            bad = sorted(unknown)[0]
            raise SchemaError(
                f"unknown {section} parameter of task {self.name!r}; known: {', '.join(space) or 'none'}",
                file=self.source,
                field=f"{self.name}.{bad}",
            )
        out: dict[str, Any] = {}
        for name, param in space.items():
            if name in values:
                out[name] = param.check(values[name], where=self.source, section=self.name)
            elif param.required:
                raise SchemaError(
                    f"required {section} parameter of task {self.name!r} is missing",
                    file=self.source,
                    field=f"{self.name}.{name}",
                )
            else:
                out[name] = param.full_default()
        return out

    def validate_job(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check one point of the job space; fills defaults."""
        return self._validate(self.job, values, "job")

    def validate_run(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check run-space values; fills defaults."""
        return self._validate(self.run, values, "run")

    def expand_jobs(self, values: dict[str, Any]) -> list[dict[str, Any]]:
        """Expand list values of non-list parameters into the cartesian product of jobs.

        ``cfg_fname=["a.cfg", "b.cfg"]`` gives two jobs; a ``list``-typed parameter takes
        a list as one value (give a list of lists to expand it).
        """
        keys, choices = [], []
        for name, value in values.items():
            param = self.job.get(name)
            expands = isinstance(value, (list, tuple)) and (
                param is None
                or param.type != "list"
                or (value and all(isinstance(v, list) for v in value))
            )
            keys.append(name)
            choices.append(list(value) if expands else [value])
        if any(len(c) == 0 for c in choices):
            empty = keys[[len(c) for c in choices].index(0)]
            raise SchemaError(
                "empty list: no job to create", file=self.source, field=f"job.{empty}"
            )
        return [
            self.validate_job(dict(zip(keys, combo, strict=True)))
            for combo in itertools.product(*choices)
        ]

    def file_params(self) -> list[str]:
        return [p.name for p in (*self.job.values(), *self.run.values()) if p.file]

    def to_dict(self) -> dict[str, Any]:
        """A plain snapshot for the database (no Path objects, no sentinels)."""
        return {
            "name": self.name,
            "description": self.description,
            "template_dir": str(self.template_dir),
            "files": list(self.files),
            "job": {k: p.to_dict() for k, p in self.job.items()},
            "run": {k: p.to_dict() for k, p in self.run.items()},
            "source_hash": self.source_hash,
        }


def _copy_default(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


def template_source_hash(template_dir: Path) -> str:
    """sha256 over every file of a template (relative names and contents).

    Part of a job's identity: editing doIt.py makes new jobs, so results of old code are
    never mistaken for results of new code.
    """
    h = hashlib.sha256()
    for path in sorted(template_dir.rglob("*")):
        rel = path.relative_to(template_dir)
        if (
            not path.is_file()
            or _IGNORED_PARTS & set(rel.parts)
            or path.suffix in _IGNORED_SUFFIXES
        ):
            continue
        h.update(str(rel).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def canonical_hash(params: dict[str, Any], source_hash: str) -> str:
    """Identity of a job: canonical JSON of its validated parameters + template hash."""
    import json

    blob = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((source_hash + "\0" + blob).encode()).hexdigest()
