"""Creating and finding task types, jobs and runs (functions of the database root).

These functions run *inside* a transaction (pass them to :meth:`Store.transact`); they
validate everything first so that a bad value raises before any object is touched.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import Any

from autopot.errors import StoreError
from autopot.store.model import Provenance, Root, Run, TaskType
from autopot.store.schema import TaskSchema, canonical_hash
from autopot.store.states import State

#: Packages whose versions go into every run's provenance.
PROVENANCE_PACKAGES = ("autopot", "ase", "numpy", "scipy", "motep", "mlippykit", "ZODB", "ZEO")

_provenance_cache: dict[tuple[int, str], Provenance] = {}


@functools.cache
def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in PROVENANCE_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = ""
    return out


def _provenance(root: Root, run_name: str) -> Provenance:
    """One shared Provenance object per (database, workflow run) in this process.

    Sharing keeps each run's record small (a reference, not a copy of the versions).
    """
    import socket

    key = (id(root._p_jar), run_name)
    prov = _provenance_cache.get(key)
    if prov is None or prov._p_jar is not root._p_jar:  # aborted, or another connection
        prov = Provenance(
            {**package_versions(), "created_on": socket.gethostname(), "run_name": run_name}
        )
        _provenance_cache[key] = prov
    return prov


def register_task_type(root: Root, schema: TaskSchema) -> TaskType:
    """Create the task type, or refresh its stored schema snapshot when the template changed."""
    snapshot = schema.to_dict()
    task_type = root.task_types.get(schema.name)
    if task_type is None:
        task_type = TaskType(schema.name, snapshot)
        root.task_types[schema.name] = task_type
    elif task_type.schema != snapshot:
        task_type.schema = snapshot
    return task_type


def get_task_type(root: Root, name: str) -> TaskType:
    task_type = root.task_types.get(name)
    if task_type is None:
        known = ", ".join(root.task_types.keys()) or "none yet"
        raise StoreError(f"unknown task type {name!r} (known: {known})", field="task")
    return task_type


def get_run(root: Root, label: str) -> Run:
    """``"train.12"`` → the run; a one-line error if either part is unknown."""
    task, _, ident = label.rpartition(".")
    if not task or not ident.isdigit():
        raise StoreError(f"expected TASK.ID (e.g. train.12), got {label!r}", field="run")
    task_type = get_task_type(root, task)
    run = task_type.runs.get(int(ident))
    if run is None:
        raise StoreError(
            f"no run {label} (task {task} has {len(task_type.runs)} runs)", field="run"
        )
    return run


def create_runs(
    root: Root,
    schema: TaskSchema,
    job_values: dict[str, Any],
    run_values: dict[str, Any] | None = None,
    *,
    run_name: str = "default",
    reuse: bool = True,
    base_dir: str | Path | None = None,
) -> list[tuple[Run, bool]]:
    """Create one run per expanded job; returns ``[(run, created), ...]``.

    Identical jobs are never duplicated. With ``reuse`` (resume semantics), a job that
    already has a run in the same workflow run that is not FAILED/CANCELLED returns
    that run instead of a new one, so restarting an orchestrator repeats no work.

    A job's identity also covers the *content* of the existing files its ``file: true``
    parameters name (sha256), so re-using a path with new content makes a new job. Paths
    are stored as given; relative ones are read relative to ``base_dir`` (default: the
    current directory).
    """
    jobs = schema.expand_jobs(job_values)  # validates every point first
    run_params = schema.validate_run(run_values or {})
    task_type = register_task_type(root, schema)
    provenance = _provenance(root, run_name)
    out: list[tuple[Run, bool]] = []
    file_params = schema.file_params()
    for params in jobs:
        identity = canonical_hash(
            {**params, "__files__": _file_digests(params, file_params, base_dir)},
            schema.source_hash,
        )
        job, _ = task_type.add_job(params, identity, schema.source_hash)
        if reuse:
            live = [
                r
                for r in task_type.runs_of_job(job.id, run_name)
                if r.state not in (State.FAILED.value, State.CANCELLED.value)
            ]
            if live:
                out.append((live[-1], False))
                continue
        out.append((task_type.add_run(job, run_params, run_name, provenance), True))
    return out


def _file_digests(
    params: dict[str, Any], names: list[str], base_dir: str | Path | None = None
) -> dict[str, Any]:
    """sha256 of the existing input files a job names: same path, new content → new job.

    Keyed by the path as given (what the job stores); a path that does not exist (yet)
    contributes nothing, so the identity is then the parameters alone.
    """
    import os.path

    from autopot.store.files import sha256_file

    base = os.fspath(base_dir) if base_dir is not None else os.getcwd()
    out: dict[str, Any] = {}
    for name in names:
        value = params.get(name)
        for path in value if isinstance(value, list) else [value]:
            if not isinstance(path, str) or not path:
                continue
            full = os.path.join(base, os.path.expanduser(path))  # an absolute path ignores base
            if os.path.isfile(full):
                out[path] = sha256_file(full)
    return out
