"""The API a task process uses (what ``doIt.py`` calls): its run, parameters, results.

A task process finds its run from the marker file the executor wrote into the run
directory (``autopot_run.json``: workflow directory, database address, task, run id), so
the same code works for local processes and SLURM jobs on compute nodes.

    with TaskContext.open() as ctx:           # RUNNING
        cfg = ctx.params["cfg_fname"]
        ctx.push("energy", -3.5)
    # FINISHED (or FAILED with the exception as cause); manifest of the run directory stored

Pushed quantities are buffered and committed together (at ``flush()`` and at exit), so a
task that crashes half-way stores nothing half-written.
"""

from __future__ import annotations

import os
import socket
import traceback
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from autopot.errors import StoreError
from autopot.store.files import manifest, read_marker
from autopot.store.states import TERMINAL, State

if TYPE_CHECKING:
    from autopot.store.workflow_records import WorkflowRecords


class TaskContext:
    def __init__(self, store: Any, task: str, run_id: int, run_dir: Path, workflow_dir: Path):
        self.store = store
        self.task = task
        self.run_id = run_id
        self.run_dir = run_dir
        self.workflow_dir = workflow_dir
        self._pending: list[tuple[str, Any, int | None]] = []
        self._files: list[str] = []
        run = self._run()
        self.job_params: dict[str, Any] = dict(run.job.params)
        self.run_params: dict[str, Any] = dict(run.params)
        self.run_name: str = run.run_name
        self.label = run.label

    @classmethod
    def open(cls, run_dir: str | Path | None = None) -> TaskContext:
        """Open the run of a run directory (default: ``$AUTOPOT_RUN_DIR`` or the cwd)."""
        from autopot.store.database import Store, open_store, parse_address

        run_dir = Path(run_dir or os.environ.get("AUTOPOT_RUN_DIR") or os.getcwd()).resolve()
        marker = read_marker(run_dir)
        workflow_dir = Path(marker.get("workflow_dir") or run_dir.parents[2])
        address = os.environ.get("AUTOPOT_DB_ADDRESS") or marker.get("db_address")
        if address and isinstance(parse_address(address), tuple):
            # TCP (compute nodes): mutual TLS from AUTOPOT_TLS_* set by the SLURM executor
            from autopot.store.task_client import open_task_store

            store = open_task_store(address)
        elif address:
            store = Store.open_zeo(address)
        else:
            store = open_store(workflow_dir)
        return cls(store, marker["task"], int(marker["run_id"]), run_dir, workflow_dir)

    # ------------------------------------------------------------------ access
    @property
    def records(self) -> WorkflowRecords:
        """The workflow's records (other runs, their files), read through the store's façade."""
        from autopot.store.workflow_records import WorkflowRecords

        return WorkflowRecords(self.workflow_dir, self.store, self.run_name)

    def _run(self) -> Any:
        from autopot.store.records import get_task_type

        return get_task_type(self.store.root, self.task).runs[self.run_id]

    @property
    def params(self) -> dict[str, Any]:
        """Job and run parameters together (they never share a name)."""
        return {**self.run_params, **self.job_params}

    def path(self, name: str) -> Path:
        return self.run_dir / name

    # ------------------------------------------------------------------ results
    def push(self, name: str, value: Any, step: int | None = None) -> None:
        """Record a quantity (scalar, list, numpy array); stored at the next flush."""
        self._pending.append((name, value, step))

    def add_file(self, name: str | Path) -> None:
        """Mark a produced file as an output (all files get a manifest entry anyway)."""
        self._files.append(str(Path(name)))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return

        def apply(root: Any) -> None:
            run = self._run()
            for name, value, step in pending:
                run.push(name, value, step)

        self.store.transact(apply, note=f"{self.label}: push")

    def set_state(self, state: State | str, cause: str = "", **fields: Any) -> None:
        def apply(root: Any) -> None:
            run = self._run()
            for name, value, step in pending:
                run.push(name, value, step)
            if State(state) in TERMINAL:
                run.manifest = manifest(self.run_dir)
                if self._files:
                    run.extra = {**run.extra, "outputs": list(self._files)}
            if run.state != State(state).value or cause:
                run.set_state(state, cause, **fields)
            else:  # already there (the executor saw the process start first): keep the facts
                for key, value in fields.items():
                    setattr(run, key, value)

        pending, self._pending = self._pending, []
        self.store.transact(apply, note=f"{self.label}: {State(state).value}")

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> TaskContext:
        run = self._run()
        if run.state in TERMINAL:
            raise StoreError(
                f"run {self.label} is already {run.state}; not running it again", field="state"
            )
        self.set_state(State.RUNNING, host=socket.gethostname())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None or (isinstance(exc, SystemExit) and exc.code in (0, None)):
                self.set_state(State.FINISHED)  # sys.exit(0) inside the block is a success
            else:
                cause = (
                    "".join(traceback.format_exception_only(exc_type, exc)).strip().splitlines()[-1]
                )
                (self.run_dir / "traceback.txt").write_text(
                    "".join(traceback.format_exception(exc_type, exc, tb))
                )
                self._pending = []  # results of a failed task are not trusted
                self.set_state(State.FAILED, cause=cause)
        finally:
            self.store.close()
