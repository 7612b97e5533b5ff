"""Reading the YAML files users write (bd.yaml, motoko.yaml, workflow options) with one-line
errors. A duplicated key is refused: PyYAML keeps the last one silently, and a user who
wrote ``steps:`` twice meant one of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autopot.errors import AutopotError


def _strict_loader() -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicated key {key!r}", key_node.start_mark
                        )
                    seen.add(key)
                except TypeError:  # unhashable key: the base class reports it
                    pass
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def load_yaml_text(text: str, source: str | Path, error: type[AutopotError] = AutopotError) -> Any:
    """Parse YAML text (no duplicated keys); errors name the source and the line."""
    import yaml

    try:
        return yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise error(
            f"malformed YAML: {getattr(exc, 'problem', None) or exc}",
            file=source,
            field=f"line {mark.line + 1}" if mark else None,
        ) from None


def read_yaml_mapping(path: Path, error: type[AutopotError] = AutopotError) -> dict[str, Any]:
    """The top-level mapping of a YAML file; errors name the file and the line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror}", file=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error("not a text file (not UTF-8)", file=path) from None
    data = load_yaml_text(text, path, error)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error("expected a mapping at top level", file=path)
    return data
