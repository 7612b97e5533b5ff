"""The AutoPot workflow's settings: flags and presets, validated before any task exists.

Every check that can fail on user input runs here (files exist and parse, atom types
cover the configurations, grades decrease, the INCAR exists), so a mistake costs a
one-line error and nothing is submitted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autopot.errors import WorkflowError

#: Demo presets: sizes chosen so the default demo converges in about 5 minutes on 2 cores.
PRESETS: dict[str, dict[str, Any]] = {
    "cu": {
        "system": "cu", "atom_types": "Cu=0", "level": 8, "grades": [100.0, 10.0, 2.0],
        "md_temperature": 500.0, "md_steps": 300, "md_timestep": 2.0,
        "gamma_min": 2.0, "gamma_max": 10.0, "train_iterations": 100, "max_iterations": 10,
        "n_initial": 6, "n_candidates": 150, "n_md": 2,
    },
    "cu-quick": {  # for tests and CI: the same workflow, smaller
        "system": "cu", "atom_types": "Cu=0", "level": 6, "grades": [10.0, 2.0],
        "md_temperature": 300.0, "md_steps": 100, "md_timestep": 2.0,
        "gamma_min": 2.0, "gamma_max": 10.0, "train_iterations": 60, "max_iterations": 8,
        "n_initial": 4, "n_candidates": 40, "n_md": 1,
    },
    "cuau": {
        "system": "cuau", "atom_types": "Cu=0,Au=1", "level": 6, "grades": [100.0, 10.0, 2.0],
        "md_temperature": 500.0, "md_steps": 200, "md_timestep": 2.0,
        "gamma_min": 2.0, "gamma_max": 10.0, "train_iterations": 60, "max_iterations": 10,
        "n_initial": 8, "n_candidates": 60, "n_md": 2,
    },
}

DEFAULTS: dict[str, Any] = {
    "level": 8, "md_temperature": 600.0, "md_steps": 1000, "md_timestep": 2.0,
    "gamma_min": 2.0, "gamma_max": 10.0, "train_iterations": 500, "max_iterations": 10,
    "calculator": "emt", "pot_fname": "",
}


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

    @classmethod
    def from_params(cls, params: dict[str, Any], *, workflow_dir: Path, run_name: str) -> Settings:
        """Flags → settings; with no stage flag and no inputs, the ``cu`` demo preset."""
        p = {k: v for k, v in params.items() if v not in (None, False, [])}
        preset_name = p.get("preset")
        if preset_name is None and not any(k in p for k in ("select", "md_select", "calculate_ts", "training_set")):
            preset_name = "cu"
        preset = PRESETS[preset_name] if preset_name else {}

        def get(name: str) -> Any:
            return p.get(name, preset.get(name, DEFAULTS.get(name)))

        inputs_dir = workflow_dir / "inputs" / run_name
        atom_types = get("atom_types")
        if not atom_types:
            raise WorkflowError("--atom_types is required (e.g. -a Mo=0,Ta=1)", field="atom_types")
        from autopot.mtp.atom_types import parse_atom_types

        parse_atom_types(atom_types)  # syntax check: one-line error naming the field
        grades = [float(g) for g in (get("grades") or [])]
        if any(b >= a for a, b in zip(grades, grades[1:], strict=False)):
            raise WorkflowError(f"--grades must be strictly decreasing, got {grades}", field="grades")
        if any(g <= 1.0 for g in grades):
            raise WorkflowError(f"--grades must all be > 1 (a grade <= 1 is interpolation), got {grades}", field="grades")
        settings = cls(
            atom_types=atom_types,
            potential=_path(p.get("potential"), "potential"),
            training_set=_path(p.get("training_set"), "training_set"),
            calculate_ts=bool(p.get("calculate_ts")) or bool(preset),
            select=bool(p.get("select")) or bool(preset),
            grades=grades,
            candidate_sets=[_path(c, "training_candidate_set") for c in p.get("training_candidate_set", [])],
            md_select=bool(p.get("md_select")) or bool(preset),
            md_configurations=[_path(c, "md_configurations") for c in p.get("md_configurations", [])],
            fresh_potential=bool(p.get("fresh_potential")),
            level=int(get("level")),
            calculator=_calculator(get("calculator")),
            pot_fname=str(_path(get("pot_fname"), "pot_fname") or ""),
            md_args={"temperature_K": float(get("md_temperature")), "steps": int(get("md_steps")),
                     "timestep_fs": float(get("md_timestep")), "friction": 0.02},
            select_args={"gamma_min": float(get("gamma_min")), "gamma_max": float(get("gamma_max")),
                         "grade_every": 1},
            train_args={"max_iter": int(get("train_iterations"))},
            max_iterations=int(get("max_iterations")),
            mtp_backend=_backend(p.get("mtp_backend")),
            inputs_dir=inputs_dir,
            preset=preset_name,
            preset_sizes=dict(preset),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Input checks that need files: run before anything is submitted."""
        if not 1.0 <= self.select_args["gamma_min"] < self.select_args["gamma_max"]:
            raise WorkflowError("need 1 <= --gamma_min < --gamma_max", field="gamma_min")
        if self.preset:
            return  # inputs are generated (and checked) by the demo itself
        if self.select and not self.grades:
            raise WorkflowError("--select needs --grades", field="grades")
        if self.select and not self.candidate_sets:
            raise WorkflowError("--select needs --training_candidate_set", field="training_candidate_set")
        if self.training_set is None:
            raise WorkflowError("--training_set is required (the active set is built on it)", field="training_set")
        if self.calculator.get("calculator") == "vasp" and not (self.pot_fname or self.calculator.get("incar")):
            raise WorkflowError("VASP needs its INCAR as --pot_fname", field="pot_fname")
        self.check_calculator()
        from autopot.mtp.cfg import read_cfg

        for path in [self.training_set, *self.candidate_sets, *self.md_configurations]:
            if path is not None:
                read_cfg(path, self.atom_types)  # parse errors and unmapped species name the file
        if self.potential is not None:
            from autopot.mtp.mtpfile import read_mtp

            read_mtp(self.potential)


    def check_calculator(self) -> None:
        """Build the reference calculator once (nothing runs) so a bad spec fails here."""
        import tempfile

        from autopot.reference import make_calculator

        spec = {**self.calculator, **({"pot_fname": self.pot_fname} if self.pot_fname else {})}
        with tempfile.TemporaryDirectory() as tmp:
            make_calculator(spec, directory=Path(tmp))


def _path(value: Any, field_name: str) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise WorkflowError("file not found", file=path, field=field_name)
    return path


def _calculator(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    text = str(value or "emt").strip()
    if text.startswith("{"):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkflowError(f"--calculator is not valid JSON: {exc.msg}", field="calculator") from None
        if not isinstance(spec, dict) or "calculator" not in spec:
            raise WorkflowError("--calculator JSON needs a 'calculator' key", field="calculator")
        return spec
    return {"calculator": text}


def _backend(value: Any) -> dict[str, Any]:
    if not value or value == "motep":
        return {"name": "motep"}
    return {"name": "mlp", "binary": str(value)}
