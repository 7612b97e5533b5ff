"""Reading the YAML files users write (bd.yaml, motoko.yaml) with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autopot.errors import AutopotError


def read_yaml_mapping(path: Path, error: type[AutopotError] = AutopotError) -> dict[str, Any]:
    """The top-level mapping of a YAML file; errors name the file and the line."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror}", file=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise error(
            f"malformed YAML: {getattr(exc, 'problem', None) or exc}",
            file=path,
            field=f"line {mark.line + 1}" if mark else None,
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error("expected a mapping at top level", file=path)
    return data
