"""Simulations as task runs: templates, job parameters, identities, cached results.

A simulation job's identity is the template's source hash plus its canonical inputs:
the structure (sha256 of its canonical extxyz, the text itself kept content-addressed in
``<workflow>/structures/``), the resolved calculator spec and the sha256 of every file it
names, and every parameter with its default filled — MLIP Arena's TASK_SOURCE + INPUTS.
The identity is computed exactly as :func:`autopot.store.records.create_runs` does, so a
finished run of the job, in any workflow run, is found before anything is started.

Templates live in the package (``autopot/simulate/templates/<task>/``) rather than the
checkout's ``tasks/``: the Python API and CLI must work from any directory and from an
installed wheel, and ``tasks/`` holds the AutoPot workflow's own templates.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from autopot.store.schema import TaskSchema, canonical_hash

TEMPLATES = Path(__file__).with_name("templates")
TASKS = ("opt", "eos", "md", "phonon", "neb", "neb_from_endpoints", "elasticity", "sfe", "vacancy")
#: composed tasks and the tasks of their parts (whose sources are part of their identity)
COMPOSED = {"eos": ("opt",), "vacancy": ("opt", "neb_from_endpoints")}
MOTOKO_NAME = "simulate.motoko.yaml"
DEFAULT_DIRNAME = "autopot-simulate"


@functools.cache
def schema(task: str) -> TaskSchema:
    return TaskSchema.load(TEMPLATES / task)


def default_workflow_dir() -> Path:
    """``$AUTOPOT_SIMULATE_DIR`` or ``./autopot-simulate`` (git-ignored, like autopot-workflow)."""
    return Path(os.environ.get("AUTOPOT_SIMULATE_DIR") or DEFAULT_DIRNAME).resolve()


def structure_path(workflow_dir: Path, sha: str) -> Path:
    return Path(workflow_dir) / "structures" / f"{sha}.extxyz"


def store_structure(workflow_dir: Path, atoms: Any) -> str:
    """Write the canonical text once (content-addressed); return its sha256."""
    import hashlib

    from autopot.simulate.common import canonical_extxyz

    text = canonical_extxyz(atoms).encode()
    sha = hashlib.sha256(text).hexdigest()
    path = structure_path(workflow_dir, sha)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(text)
        os.replace(tmp, path)
    return sha


def identity(task: str, job: dict[str, Any]) -> str:
    """The job identity create_runs gives these parameters (no ``file: true`` params here)."""
    s = schema(task)
    params = s.validate_job(job)
    return canonical_hash({**params, "__files__": {}}, s.source_hash)


def finished_run(root: Any, task: str, job: dict[str, Any]) -> Any:
    """The newest FINISHED run of this job in any workflow run, or None."""
    task_type = root.task_types.get(task)
    if task_type is None:
        return None
    found = task_type.find_job(identity(task, job))
    if found is None:
        return None
    done = [r for r in task_type.runs_of_job(found.id) if r.state == "FINISHED"]
    return done[-1] if done else None


def write_motoko(workflow_dir: Path, executor: dict[str, Any]) -> Path:
    """The motoko file of the simulation task managers, inside the workflow directory.

    Its own name (not motoko.yaml) so that a workflow directory that already holds the
    AutoPot database keeps being found as such; ``directory: .`` puts the runs beside it.
    """
    import yaml

    managers: dict[str, Any] = {name: {"template": str(TEMPLATES / name)} for name in TASKS}
    managers["md"]["retries"] = 1  # a lost MD (node failure) resumes from its trajectory
    data = {
        "directory": ".",
        "executor": executor,
        "task_managers": managers,
        "orchestrator": "autopot.simulate.flow.main",
    }
    path = Path(workflow_dir) / MOTOKO_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# written by autopot.simulate for its task runs; rewritten on every call\n"
    text += yaml.safe_dump(data, sort_keys=False)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path
