"""Preparing a run directory: template files, input files named by parameters, marker.

Layout: ``<workflow dir>/runs/<task>/<id>/``. Inputs named by ``file: true`` parameters
are copied in (by base name) so that a run directory is self-contained: it can be
archived, inspected and re-run by hand. Missing inputs fail before submission. A file
parameter's declared ``companions`` (``pot.mtp.als.npz`` beside ``pot.mtp``: the active set
its training run computed) come along when present, so each of hundreds of MD runs does
not rebuild what one training run already built.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from autopot.errors import WorkflowError
from autopot.store.database import WorkflowPaths
from autopot.store.files import write_marker
from autopot.store.outcome import remove_outcome
from autopot.store.schema import TaskSchema


def run_dir_for(workflow_dir: Path, task: str, run_id: int) -> Path:
    return WorkflowPaths(workflow_dir).run_dir(task, run_id)


def input_files(schema: TaskSchema, params: dict[str, Any]) -> list[tuple[str, Path]]:
    """(parameter, path) of every existing-or-required input file of a run."""
    out = []
    for name in schema.file_params():
        value = params.get(name)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and v:
                out.append((name, Path(v)))
    return out


def check_inputs(schema: TaskSchema, params: dict[str, Any]) -> None:
    for name, path in input_files(schema, params):
        if not path.is_file():
            raise WorkflowError(
                f"input file of task {schema.name!r} not found", file=path, field=name
            )


def prepare(
    schema: TaskSchema,
    workflow_dir: Path,
    run_id: int,
    params: dict[str, Any],
    marker: dict[str, Any],
) -> Path:
    """Create (or refresh, on resubmission) the run directory and return it."""
    run_dir = run_dir_for(workflow_dir, schema.name, run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    for fname in schema.files:
        dest = run_dir / fname
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(schema.template_dir / fname, dest)
    companions = {p.name: p.companions for p in (*schema.job.values(), *schema.run.values())}
    for name, path in input_files(schema, params):
        dest = run_dir / path.name
        if not path.is_file():
            raise WorkflowError(
                f"input file of task {schema.name!r} not found", file=path, field=name
            )
        if dest.resolve() != path.resolve():
            _copy(path, dest)
        for suffix in companions.get(name, ()):
            src, copy = path.with_name(path.name + suffix), dest.with_name(dest.name + suffix)
            if copy.resolve() == src.resolve():
                continue
            if src.is_file():
                _copy(src, copy)
            else:  # an earlier attempt's copy must not outlive its source
                copy.unlink(missing_ok=True)
    remove_outcome(run_dir)  # an earlier attempt's outcome must not settle this one
    write_marker(run_dir, marker)
    return run_dir


def _copy(src: Path, dest: Path) -> None:
    """Copy atomically. Never hard-link: an input rewritten in place later (a training set
    grown by the next iteration) would silently change this run's record."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copy2(src, tmp)
    os.replace(tmp, dest)
