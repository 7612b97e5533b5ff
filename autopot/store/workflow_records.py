"""The workflow directory and its records, read one way: the façade every other package uses.

The CLI, results (export, report, archive), the engine's views, task code and simulation
tasks read runs through :class:`WorkflowRecords`; none of them walks ZODB objects, BTree
indexes or the ``runs/<task>/<id>`` layout itself. Knowledge that used to be re-derived
in several layers lives here once:

* the layout of a workflow directory (:class:`~autopot.store.database.WorkflowPaths`);
* "is there a database here" (one message);
* which workflow run is meant when none is named (the latest started);
* runs of a task by ids, query or workflow run, and counts per state;
* a run's directory, files and outcome.

It works the same on a live workflow (through its ZEO server), a finished one (the file,
read-only) and an archive extracted elsewhere: run directories are stored relative to the
workflow directory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autopot.errors import StoreError
from autopot.store.database import WorkflowPaths

if TYPE_CHECKING:
    from autopot.store.database import Store
    from autopot.store.model import Root, Run, TaskType, WorkflowRun


def require_database(directory: Path) -> None:
    """The one "no database here" check, with the one message users see."""
    if not WorkflowPaths(directory).db_dir.is_dir():
        raise StoreError(
            "no autopot database here (run a workflow first or pass -W)", file=directory
        )


def latest_run_name(root: Root) -> str | None:
    """The most recently created workflow run's name (None in an empty database).

    Simulation runs recorded in the same directory (``params["simulation"]``) are only
    chosen when there is nothing else: "the latest run" of an AutoPot workflow means its
    active learning, not the EOS someone computed on its potential afterwards.
    """
    runs = list(root.workflow_runs.values())
    if not runs:
        return None
    primary = [r for r in runs if not (getattr(r, "params", None) or {}).get("simulation")]
    return max(primary or runs, key=lambda r: r.created).name


def count_states(
    root: Root, run_name: str | None = None, *, from_records: bool = False
) -> dict[str, dict[str, int]]:
    """task -> state -> number of runs (of ``run_name``, or all), zero counts left out.

    The state index answers in a few buckets; ``from_records`` counts the runs
    themselves instead (what an archive check wants: it verifies the records).
    """
    from BTrees.IIBTree import intersection

    out: dict[str, dict[str, int]] = {}
    for name, task_type in root.task_types.items():
        if from_records:
            runs = (
                r for r in task_type.runs.values() if run_name is None or r.run_name == run_name
            )
            counts = dict(Counter(r.state for r in runs))
        else:
            mine = task_type.by_run_name.get(run_name) if run_name is not None else None
            if run_name is not None and mine is None:
                continue
            counts = {
                state: len(ids if mine is None else intersection(ids, mine))
                for state, ids in task_type.by_state.items()
            }
        counts = {k: v for k, v in sorted(counts.items()) if v}
        if counts or from_records:
            out[name] = counts
    return out


class WorkflowRecords:
    """An open view of one workflow directory's records, for one workflow run."""

    def __init__(self, directory: Path, store: Store, run_name: str | None = None):
        self.directory = Path(directory)
        self.paths = WorkflowPaths(directory)
        self.store = store
        self._run_name = run_name

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        where: str | Path | None = None,
        run_name: str | None = None,
        *,
        read_only: bool = True,
        require_run: bool = True,
    ) -> WorkflowRecords:
        """Open a workflow directory (or its motoko.yaml; default: the current one's).

        ``run_name`` None means the latest workflow run; with ``require_run``, a database
        without workflow runs, or an unknown name, is a one-line error.
        """
        from autopot.locate import resolve_workflow_dir
        from autopot.store.database import open_store

        directory = resolve_workflow_dir(where)
        require_database(directory)
        store = open_store(directory, read_only=read_only, create=not read_only)
        try:
            runs = store.root.workflow_runs
            if run_name is None:
                run_name = latest_run_name(store.root)
                if run_name is None and require_run:
                    raise StoreError("the database holds no workflow run", file=directory)
            elif require_run and run_name not in runs:
                known = ", ".join(sorted(runs)) or "none"
                raise StoreError(
                    f"no workflow run {run_name!r} (known: {known})",
                    file=directory,
                    field="run_name",
                )
        except BaseException:
            store.close()
            raise
        return cls(directory, store, run_name)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> WorkflowRecords:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ workflow runs
    @property
    def root(self) -> Root:
        return self.store.root

    @property
    def run_name(self) -> str:
        if self._run_name is None:
            self._run_name = latest_run_name(self.root) or "default"
        return self._run_name

    def workflow_record(self) -> WorkflowRun | None:
        return self.root.workflow_runs.get(self.run_name)

    def workflow_run_names(self) -> list[str]:
        return sorted(self.root.workflow_runs)

    @property
    def summary(self) -> dict[str, Any]:
        record = self.workflow_record()
        return dict(record.summary) if record is not None else {}

    # ------------------------------------------------------------------ runs
    def task_names(self) -> list[str]:
        return list(self.root.task_types.keys())

    def task_type(self, task: str) -> TaskType:
        from autopot.store.records import get_task_type

        return get_task_type(self.root, task)

    def runs(
        self, task: str, *, finished_only: bool = False, all_workflow_runs: bool = False
    ) -> list[Run]:
        """Runs of ``task`` in this workflow run (or every one), oldest first."""
        task_type = self.root.task_types.get(task)
        if task_type is None:
            return []
        if all_workflow_runs:
            runs = list(task_type.runs.values())
        else:
            ids = task_type.by_run_name.get(self.run_name)
            runs = [task_type.runs[i] for i in ids] if ids is not None else []
        return [r for r in runs if r.state == "FINISHED"] if finished_only else runs

    def runs_by_id(
        self, task: str, ids: Iterable[int], *, state: str | None = None, field: str = "ids"
    ) -> list[Run]:
        """The runs ``task.<id>`` for ``ids``, in that order; one line naming ``field`` if
        one is missing or (with ``state``) not in that state."""
        task_type = self.root.task_types.get(task)
        out = []
        for run_id in ids:
            run = task_type.runs.get(int(run_id)) if task_type is not None else None
            if run is None:
                raise StoreError(f"no {task} run {run_id}", field=field)
            if state is not None and run.state != state:
                raise StoreError(f"{task}.{run_id} is {run.state}, not {state}", field=field)
            out.append(run)
        return out

    def select(
        self, task: str, where: Sequence[str] = (), *, limit: int | None = None, strict: bool = True
    ) -> list[Run]:
        """Runs of ``task`` (every workflow run) matching ``--where`` constraints."""
        from autopot.store import query

        return list(query.select(self.task_type(task), list(where), limit=limit, strict=strict))

    def run(self, label: str) -> Run:
        """``"train.12"`` → the run (one-line error if unknown)."""
        from autopot.store.records import get_run

        return get_run(self.root, label)

    def counts(self, *, all_workflow_runs: bool = False) -> dict[str, dict[str, int]]:
        """task -> state -> number of runs of this workflow run (or all)."""
        return count_states(self.root, None if all_workflow_runs else self.run_name)

    # ------------------------------------------------------------------ files and outcome
    def run_dir(self, run: Run) -> Path:
        """Where a run's files are, in this copy of the workflow directory."""
        if not run.directory:
            raise StoreError(
                f"{run.label} has no run directory (it never started)", field="directory"
            )
        return self.directory / run.directory

    def files(self, run: Run) -> dict[str, tuple[str, int]]:
        """name -> (sha256, size) of the files the run declared when it ended."""
        return dict(run.manifest)

    def outcome(self, run: Run) -> dict[str, Any]:
        """What a run ended with: state, exit code, cause, quantities, files."""
        return {
            "label": run.label,
            "state": run.state,
            "exit_code": run.exit_code,
            "cause": run.cause,
            "quantities": dict(run.quantities),
            "files": self.files(run),
        }

    def atom_types(self, run: Run | None = None) -> str:
        """The workflow's ``atom_types`` (from a run's parameters, else the summary)."""
        for params in (run.job.params, run.params) if run is not None else ():
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
        raise StoreError(
            "cannot tell the atom types of this workflow; pass --atom-types", field="atom_types"
        )

    def last_train(self) -> Run:
        """The most recent FINISHED train run: the workflow's current potential."""
        trains = self.runs("train", finished_only=True)
        if not trains:
            raise StoreError(
                f"workflow run {self.run_name!r} has no finished train run",
                file=self.directory,
                field="train",
            )
        return trains[-1]
