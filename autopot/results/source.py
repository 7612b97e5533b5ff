"""Reading a workflow's records for what users take away (export, report, final potential).

Works on a workflow *directory* (not its motoko.yaml), so it works the same on a live
workflow (through its ZEO server), a finished one (the file, read-only, no lock) and an
archive extracted elsewhere: run directories are stored relative to the workflow
directory, and nothing here follows the absolute input paths recorded in job parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autopot.errors import StoreError


@dataclass
class WorkflowRecords:
    """An open, read-only view of one workflow run's records."""

    directory: Path
    store: Any
    run_name: str

    @property
    def root(self) -> Any:
        return self.store.root

    def runs(self, task: str, *, finished_only: bool = False) -> list[Any]:
        """Runs of ``task`` in this workflow run, oldest first."""
        task_type = self.root.task_types.get(task)
        if task_type is None:
            return []
        ids = task_type.by_run_name.get(self.run_name)
        if ids is None:
            return []
        runs = [task_type.runs[i] for i in ids]
        return [r for r in runs if r.state == "FINISHED"] if finished_only else runs

    def run(self, label: str) -> Any:
        from autopot.store.records import get_run

        return get_run(self.root, label)

    def run_dir(self, run: Any) -> Path:
        """Where a run's files are, in this copy of the workflow directory."""
        if not run.directory:
            raise StoreError(f"{run.label} has no run directory (it never started)", field="directory")
        return self.directory / run.directory

    @property
    def summary(self) -> dict[str, Any]:
        record = self.root.workflow_runs.get(self.run_name)
        return dict(record.summary) if record is not None else {}

    def atom_types(self, run: Any | None = None) -> str:
        """The workflow's ``atom_types`` (from a run's parameters, else the summary)."""
        for params in ((run.job.params, run.params) if run is not None else ()):
            if params.get("atom_types"):
                return str(params["atom_types"])
        settings = self.summary.get("settings") or {}
        if settings.get("atom_types"):
            return str(settings["atom_types"])
        for task in ("train", "select", "md_select", "sp_calc"):
            for r in self.runs(task):
                value = r.job.params.get("atom_types") or r.params.get("atom_types")
                if value:
                    return str(value)
        raise StoreError("cannot tell the atom types of this workflow; pass --atom-types", field="atom_types")

    def last_train(self) -> Any:
        """The most recent FINISHED train run: the workflow's current potential."""
        trains = self.runs("train", finished_only=True)
        if not trains:
            raise StoreError(f"workflow run {self.run_name!r} has no finished train run", file=self.directory,
                             field="train")
        return trains[-1]

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> WorkflowRecords:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def train_context(run: Any) -> dict[str, Any]:
    """Stage, iteration and threshold of a train run, as the stages recorded them in its
    job's ``context`` (``train_args["context"]`` in older records; empty for train runs made by hand)."""
    params = run.job.params
    if "context" in params:
        return dict(params["context"] or {})
    return dict((params.get("train_args") or {}).get("context") or {})  # records before 0.2


def open_records(workflow_dir: str | Path | None = None, run_name: str | None = None) -> WorkflowRecords:
    """Open a workflow directory (or its motoko.yaml) read-only; default run: the latest."""
    from autopot.locate import resolve_workflow_dir
    from autopot.store.database import open_store

    directory = resolve_workflow_dir(workflow_dir)
    if not (directory / "db").is_dir():
        raise StoreError("no autopot database here (run a workflow first or pass -W)", file=directory)
    store = open_store(directory, read_only=True)
    try:
        runs = store.root.workflow_runs
        if run_name is None:
            if not len(runs):
                raise StoreError("the database holds no workflow run", file=directory)
            run_name = max(runs.values(), key=lambda r: r.created).name
        elif run_name not in runs:
            known = ", ".join(sorted(runs)) or "none"
            raise StoreError(f"no workflow run {run_name!r} (known: {known})", file=directory, field="run_name")
    except BaseException:
        store.close()
        raise
    return WorkflowRecords(directory=directory, store=store, run_name=run_name)

