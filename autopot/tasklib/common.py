"""Helpers shared by the task implementations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autopot.errors import AutopotError


def local_input(ctx: Any, name: str) -> Path:
    """The run directory's copy of the input file named by parameter ``name``."""
    value = ctx.params.get(name)
    if not value:
        raise AutopotError("input file parameter is empty", file=ctx.run_dir, field=name)
    path = ctx.run_dir / Path(value).name
    if not path.is_file():
        raise AutopotError("input file missing from the run directory", file=path, field=name)
    return path


def local_inputs(ctx: Any, name: str) -> list[Path]:
    values = ctx.params.get(name) or []
    return [ctx.run_dir / Path(v).name for v in values]


def backend_of(ctx: Any) -> Any:
    """The MTP backend named by the run space (``{name: motep}`` or ``{name: mlp, binary: ...}``)."""
    from autopot.mtp.backend import backend_from_spec

    return backend_from_spec(ctx.params.get("mtp_backend"))
