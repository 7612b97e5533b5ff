"""The AutoPot workflow's settings: flags and presets, validated before any task exists.

Every check that can fail on user input runs here (files exist and parse, atom types
cover the configurations, grades decrease, the INCAR exists), so a mistake costs a
one-line error and nothing is submitted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autopot.errors import AutopotError, WorkflowError

if TYPE_CHECKING:
    from autopot.store.schema import TaskSchema

#: Demo presets: sizes chosen so the default demo converges in about 5 minutes on 2 cores.
PRESETS: dict[str, dict[str, Any]] = {
    "cu": {
        "system": "cu",
        "atom_types": "Cu=0",
        "level": 8,
        "grades": [100.0, 10.0, 2.0],
        "md_temperature": 500.0,
        "md_steps": 300,
        "md_timestep": 2.0,
        "gamma_min": 2.0,
        "gamma_max": 10.0,
        "train_iterations": 100,
        "max_iterations": 10,
        "n_initial": 6,
        "n_candidates": 150,
        "n_md": 2,
    },
    "cu-quick": {  # for tests and CI: the same workflow, smaller
        "system": "cu",
        "atom_types": "Cu=0",
        "level": 6,
        "grades": [10.0, 2.0],
        "md_temperature": 300.0,
        "md_steps": 100,
        "md_timestep": 2.0,
        "gamma_min": 2.0,
        "gamma_max": 10.0,
        "train_iterations": 60,
        "max_iterations": 8,
        "n_initial": 4,
        "n_candidates": 40,
        "n_md": 1,
    },
    "cuau": {
        "system": "cuau",
        "atom_types": "Cu=0,Au=1",
        "level": 6,
        "grades": [100.0, 10.0, 2.0],
        "md_temperature": 500.0,
        "md_steps": 200,
        "md_timestep": 2.0,
        "gamma_min": 2.0,
        "gamma_max": 10.0,
        "train_iterations": 60,
        "max_iterations": 10,
        "n_initial": 8,
        "n_candidates": 60,
        "n_md": 2,
    },
}

#: Orchestrator-level defaults (task parameters take theirs from the tasks' bd.yaml).
DEFAULTS: dict[str, Any] = {"level": 8, "max_iterations": 10, "calculator": "emt", "pot_fname": ""}

#: flag -> (task, dict parameter, key): a flag that sets one key of a task's dict
#: parameter; its default is that key's default in the task's bd.yaml.
FLAG_KEYS: dict[str, tuple[str, str, str]] = {
    "md_temperature": ("md_select", "md_args", "temperature_K"),
    "md_steps": ("md_select", "md_args", "steps"),
    "md_timestep": ("md_select", "md_args", "timestep_fs"),
    "gamma_min": ("md_select", "select_args", "gamma_min"),
    "gamma_max": ("md_select", "select_args", "gamma_max"),
    "train_iterations": ("train", "train_args", "max_iter"),
}
#: dict flag -> (task, parameter) it is checked against
DICT_FLAGS: dict[str, tuple[str, str]] = {
    "md_args": ("md_select", "md_args"),
    "select_args": ("md_select", "select_args"),
    "train_args": ("train", "train_args"),
    "mtp_backend": ("train", "mtp_backend"),
    "calculator": ("sp_calc", "calculator"),
}


def flag_name(dest: str) -> str:
    """The flag a user typed for parameter ``dest`` (hyphen style)."""
    return "--" + dest.replace("_", "-")


@dataclass
class Settings:
    atom_types: str
    potential: Path | None
    training_set: Path | None
    calculate_ts: bool
    select: bool
    grades: list[float]
    candidate_sets: list[Path]
    md_select: bool
    md_configurations: list[Path]
    fresh_potential: bool
    level: int
    calculator: dict[str, Any]
    pot_fname: str
    md_args: dict[str, Any]
    select_args: dict[str, Any]
    train_args: dict[str, Any]
    max_iterations: int
    mtp_backend: dict[str, Any]
    inputs_dir: Path
    preset: str | None = None
    preset_sizes: dict[str, Any] = field(default_factory=dict)
    validate: bool = True  # validation stage once the active learning converged
    validation_suite: Path | None = None  # user suite (merged over the family's default)
    validation_suite_loaded: Any = None  # the checked Suite (None: no validation)
    validation_skip: str = ""  # why a default validation is off (e.g. no suite for alloys)
    # grade each MD's picks against the iteration's picks dispatched so far, drop covered
    # ones (autopot/activelearning/online_selection.py); off only to measure what it saves
    cross_md_selection: bool = True

    @classmethod
    def from_params(
        cls,
        params: dict[str, Any],
        *,
        workflow_dir: Path,
        run_name: str,
        schemas: Mapping[str, TaskSchema],
    ) -> Settings:
        """Flags → settings, every value checked; with no stage flag and no inputs, the
        ``cu`` demo preset. Reads files, writes nothing."""
        p = {
            k: v for k, v in params.items() if v is not None and v is not False and v != []
        }  # 0 is a value
        preset_name = p.get("preset")
        if preset_name is None and not any(
            k in p for k in ("select", "md_select", "calculate_ts", "training_set")
        ):
            preset_name = "cu"
        preset = PRESETS[preset_name] if preset_name else {}

        def get(name: str) -> Any:
            return p.get(name, preset.get(name, DEFAULTS.get(name)))

        for name in ("level", "max_iterations"):
            value = get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise WorkflowError(
                    f"expected a positive integer, got {value!r}", field=flag_name(name)
                )
        inputs_dir = workflow_dir / "inputs" / run_name
        atom_types = get("atom_types")
        if not atom_types:
            raise WorkflowError(
                "--atom-types is required (e.g. -a Mo=0,Ta=1)", field="--atom-types"
            )
        from autopot.mtp.atom_types import parse_atom_types

        try:
            parse_atom_types(atom_types)
        except AutopotError as exc:
            raise WorkflowError(exc.message, field="--atom-types") from None
        grades = [float(g) for g in (get("grades") or [])]
        if any(b >= a for a, b in zip(grades, grades[1:], strict=False)):
            raise WorkflowError(f"must be strictly decreasing, got {grades}", field="--grades")
        if any(g <= 1.0 for g in grades):
            raise WorkflowError(
                f"must all be > 1 (a grade <= 1 is interpolation), got {grades}", field="--grades"
            )
        dicts = {name: _dict_flag(p.get(name), name) for name in DICT_FLAGS if name != "calculator"}
        for flag, (_task, param, key) in FLAG_KEYS.items():
            value = get(flag)
            if value is not None:
                dicts[param][key] = value
        checked = {name: _check_dict(schemas, name, value) for name, value in dicts.items()}
        settings = cls(
            atom_types=atom_types,
            potential=_path(p.get("potential"), "potential"),
            training_set=_path(p.get("training_set"), "training_set"),
            calculate_ts=bool(p.get("calculate_ts")) or bool(preset),
            select=bool(p.get("select")) or bool(preset),
            grades=grades,
            candidate_sets=[
                _required_path(c, "training_candidate_set")
                for c in p.get("training_candidate_set", [])
            ],
            md_select=bool(p.get("md_select")) or bool(preset),
            md_configurations=[
                _required_path(c, "md_configurations") for c in p.get("md_configurations", [])
            ],
            fresh_potential=bool(p.get("fresh_potential")),
            level=int(get("level")),
            calculator=_check_dict(schemas, "calculator", _calculator(get("calculator"))),
            pot_fname=str(_path(get("pot_fname"), "pot_fname") or ""),
            md_args=checked["md_args"],
            select_args=checked["select_args"],
            train_args=checked["train_args"],
            max_iterations=int(get("max_iterations")),
            mtp_backend=checked["mtp_backend"],
            inputs_dir=inputs_dir,
            preset=preset_name,
            preset_sizes=dict(preset),
            validate=not p.get("no_validate"),
            validation_suite=_path(p.get("validation_suite"), "validation_suite"),
            cross_md_selection=not p.get("no_cross_md_selection"),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Input checks that need files: run before anything is written."""
        if not self.select_args["gamma_min"] < self.select_args["gamma_max"]:
            raise WorkflowError(
                f"gamma_min ({self.select_args['gamma_min']:g}) must be below gamma_max "
                f"({self.select_args['gamma_max']:g})",
                field="--gamma-min",
            )
        from autopot.mtp.backend import backend_from_spec

        try:
            backend = backend_from_spec(self.mtp_backend)  # an mlp binary must be executable
        except AutopotError as exc:
            raise WorkflowError(exc.message, file=exc.file, field="--mtp-backend") from None
        try:
            backend.check_train_args(self.train_args)  # e.g. mlp trains with BFGS only
        except AutopotError as exc:
            raise WorkflowError(
                f"{exc.field}: {exc.message} (with --mtp-backend {backend.name})",
                field="--train-args",
            ) from None
        self.check_validation()
        if self.preset:
            return  # inputs are generated (and checked) by the demo itself
        if self.select and not self.grades:
            raise WorkflowError("--select needs --grades", field="--grades")
        if self.select and not self.candidate_sets:
            raise WorkflowError(
                "--select needs --training-candidate-set", field="--training-candidate-set"
            )
        if self.training_set is None:
            raise WorkflowError(
                "--training-set is required (the active set is built on it)", field="--training-set"
            )
        if self.calculator.get("calculator") == "vasp" and not (
            self.pot_fname or self.calculator.get("incar")
        ):
            raise WorkflowError("VASP needs its INCAR as --pot-fname", field="--pot-fname")
        self.check_calculator()
        from autopot.mtp.cfg import read_cfg

        named = [
            (self.training_set, "--training-set"),
            *[(c, "--training-candidate-set") for c in self.candidate_sets],
            *[(c, "--md-configurations") for c in self.md_configurations],
        ]
        for path, flag in named:
            if not read_cfg(
                path, self.atom_types
            ):  # parse errors and unmapped species name the file
                raise WorkflowError(
                    "no configurations in this file (empty?)", file=path, field=flag
                )
        if self.potential is not None:
            from autopot.mtp.mtpfile import read_mtp

            read_mtp(self.potential)

    def check_validation(self) -> None:
        """Load the validation suite now: a user's suite that does not parse, or does not fit
        the workflow's species, is refused before anything runs; the shipped default that
        does not fit (an alloy, a family without a suite) only switches the stage off."""
        if not self.validate:
            return
        from autopot.validation.suite import load_suite

        try:
            suite = load_suite(self.validation_suite, atom_types=self.atom_types)
            suite.bulk(self.atom_types)
        except AutopotError as exc:
            if self.validation_suite is not None:
                raise WorkflowError(
                    exc.message, file=exc.file or self.validation_suite, field=_suite_field(exc)
                ) from None
            self.validation_skip = f"no validation: {exc.message}"
            return
        self.validation_suite_loaded = suite

    def check_calculator(self) -> None:
        """Build the reference calculator once (nothing runs) so a bad spec fails here."""
        import tempfile

        from autopot.reference import make_calculator

        spec = {**self.calculator, **({"pot_fname": self.pot_fname} if self.pot_fname else {})}
        with tempfile.TemporaryDirectory() as tmp:
            make_calculator(spec, directory=Path(tmp))


def _suite_field(exc: AutopotError) -> str:
    return f"--validation-suite ({exc.field})" if exc.field else "--validation-suite"


def _dict_flag(value: Any, name: str) -> dict[str, Any]:
    """A dict-valued flag: a mapping (from a workflow options file) or JSON text."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    if name == "mtp_backend" and not str(value).lstrip().startswith("{"):
        return _backend(value)
    try:
        data = json.loads(str(value))
    except json.JSONDecodeError as exc:
        raise WorkflowError(f"not valid JSON: {exc.msg}", field=flag_name(name)) from None
    if not isinstance(data, dict):
        raise WorkflowError(
            f"expected a JSON object, got {type(data).__name__}", field=flag_name(name)
        )
    return data


def _check_dict(
    schemas: Mapping[str, TaskSchema], name: str, value: dict[str, Any]
) -> dict[str, Any]:
    """``value`` checked against the task parameter the flag feeds (defaults filled)."""
    task, param = DICT_FLAGS[name]
    schema = schemas.get(task)
    if schema is None:
        raise WorkflowError(f"the workflow has no {task!r} task manager", field="task_managers")
    space = schema.job if param in schema.job else schema.run
    try:
        return space[param].check(value, where=schema.source, section=task)
    except AutopotError as exc:
        flags = [
            flag_name(f)
            for f, (_t, pa, key) in FLAG_KEYS.items()
            if exc.field == f"{task}.{pa}.{key}"
        ]
        via = flags[0] if flags else flag_name(name)
        raise WorkflowError(exc.message, field=f"{via} ({exc.field})") from None


def _required_path(value: Any, field_name: str) -> Path:
    path = _path(value, field_name)
    if path is None:
        raise WorkflowError("empty file name", field=flag_name(field_name))
    return path


def _path(value: Any, field_name: str) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise WorkflowError(
            "file not found" if not path.exists() else "not a file",
            file=path,
            field=flag_name(field_name),
        )
    if not os.access(path, os.R_OK):
        raise WorkflowError(
            "not readable (permission denied)", file=path, field=flag_name(field_name)
        )
    if path.stat().st_size == 0 or not path.read_bytes().strip():
        raise WorkflowError("empty file", file=path, field=flag_name(field_name))
    return path


def _calculator(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    text = str(value or "emt").strip()
    if text.startswith("{"):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkflowError(f"not valid JSON: {exc.msg}", field="--calculator") from None
        if not isinstance(spec, dict) or "calculator" not in spec:
            raise WorkflowError(
                "a JSON calculator spec needs a 'calculator' key", field="--calculator"
            )
        return spec
    return {"calculator": text}


def _backend(value: Any) -> dict[str, Any]:
    if not value or value == "motep":
        return {"name": "motep"}
    return {"name": "mlp", "binary": str(value)}
