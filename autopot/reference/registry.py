"""The model registry (``models.yaml``): names for calculator specs, with metadata.

MLIP Arena's ``models/registry.yaml`` in autopot's form: each entry is a calculator spec
(anything :func:`autopot.reference.calculators.resolve_spec` accepts) plus family,
training data and license. Three files are read, later ones winning per name: the
packaged ``models.yaml``, ``./models.yaml`` of the current directory, ``$AUTOPOT_MODELS``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autopot.errors import AutopotError

PACKAGED = Path(__file__).with_name("models.yaml")
_KEYS = {"calculator", "family", "training_data", "license", "doc"}


@dataclass(frozen=True)
class Model:
    name: str
    spec: Any
    base_dir: Path  # relative paths in the spec are relative to the declaring file
    meta: dict[str, Any] = field(default_factory=dict)


def registry_files() -> list[Path]:
    files = [PACKAGED, Path.cwd() / "models.yaml"]
    if os.environ.get("AUTOPOT_MODELS"):
        files.append(Path(os.environ["AUTOPOT_MODELS"]).expanduser())
    seen, out = set(), []
    for path in files:
        if path.is_file() and path.resolve() not in seen:
            seen.add(path.resolve())
            out.append(path)
    return out


def load(files: list[Path] | None = None) -> dict[str, Model]:
    """Every model of the registry files; a malformed entry fails naming file and entry."""
    from autopot.yamlfile import read_yaml_mapping

    models: dict[str, Model] = {}
    for path in files if files is not None else registry_files():
        data = read_yaml_mapping(path, AutopotError)
        for name, entry in data.items():
            if not isinstance(entry, dict) or "calculator" not in entry:
                raise AutopotError(
                    "expected a mapping with a calculator spec", file=path, field=str(name)
                )
            unknown = set(entry) - _KEYS
            if unknown:
                raise AutopotError(
                    f"unknown key(s) {sorted(unknown)}",
                    file=path,
                    field=f"{name}.{sorted(unknown)[0]}",
                )
            meta = {k: v for k, v in entry.items() if k != "calculator"}
            models[str(name)] = Model(str(name), entry["calculator"], path.parent.resolve(), meta)
    return models


def lookup(name: str) -> Model | None:
    return load().get(name)


def names() -> list[str]:
    return sorted(load())
