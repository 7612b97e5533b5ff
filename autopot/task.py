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

The outcome is a file first (:mod:`autopot.store.outcome`): at exit the task writes its
state, cause, uncommitted quantities and manifest into the run directory, then commits
them if it can reach the database. A task that cannot (the server is restarting, the disk
under it is full, a compute node has no database access: marker ``db: none``) runs
*offline*: parameters come from the marker, other runs' records from a read-only view of
the database file, and the orchestrator ingests the outcome file when the process ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from autopot.errors import StoreError
from autopot.store.files import manifest, read_marker
from autopot.store.outcome import OUTCOME_FILE, apply_outcome, new_outcome, write_outcome
from autopot.store.states import TERMINAL, State

log = logging.getLogger("autopot.task")

#: How long a task waits for an unreachable database at start before it runs offline
#: (its outcome file is ingested by the orchestrator; nothing is lost by not waiting).
TASK_DB_WAIT_ENV = "AUTOPOT_TASK_DB_WAIT"

if TYPE_CHECKING:
    from autopot.store.workflow_records import WorkflowRecords


class TaskContext:
    def __init__(
        self,
        store: Any,
        task: str,
        run_id: int,
        run_dir: Path,
        workflow_dir: Path,
        marker: dict[str, Any] | None = None,
    ):
        self.store = store  # None: offline (the outcome file is the only result)
        self.task = task
        self.run_id = run_id
        self.run_dir = run_dir
        self.workflow_dir = workflow_dir
        self._pending: list[tuple[str, Any, int | None]] = []
        self._files: list[str] = []
        self._work: dict[str, list[list[float]]] = {}
        self._reader: Any = None
        marker = marker or {}
        self.label = f"{task}.{run_id}"
        if store is not None:
            run = self._run()
            self.job_params: dict[str, Any] = dict(run.job.params)
            self.run_params: dict[str, Any] = dict(run.params)
            self.run_name: str = run.run_name
        elif "params" in marker:
            params = dict(marker["params"])
            run_names = set(marker.get("run_param_names", ()))
            self.job_params = {k: v for k, v in params.items() if k not in run_names}
            self.run_params = {k: v for k, v in params.items() if k in run_names}
            self.run_name = str(marker.get("run_name") or "default")
        else:
            raise StoreError(
                "no database connection and no parameters in the run marker",
                file=run_dir / "autopot_run.json",
            )

    @property
    def offline(self) -> bool:
        """True when results go to the outcome file only (no database connection)."""
        return self.store is None

    @classmethod
    def open(cls, run_dir: str | Path | None = None) -> TaskContext:
        """Open the run of a run directory (default: ``$AUTOPOT_RUN_DIR`` or the cwd)."""
        from autopot.store.database import Store, open_store, parse_address

        run_dir = Path(run_dir or os.environ.get("AUTOPOT_RUN_DIR") or os.getcwd()).resolve()
        marker = read_marker(run_dir)
        workflow_dir = Path(marker.get("workflow_dir") or run_dir.parents[2])
        address = os.environ.get("AUTOPOT_DB_ADDRESS") or marker.get("db_address")
        wait = float(os.environ.get(TASK_DB_WAIT_ENV, "10"))
        store: Any = None
        if marker.get("db") == "none" and "params" in marker:
            pass  # compute nodes without database access: the outcome file is the result
        else:
            try:
                if address and isinstance(parse_address(address), tuple):
                    # TCP (compute nodes): mutual TLS from AUTOPOT_TLS_* set by the executor
                    from autopot.store.task_client import open_task_store

                    store = open_task_store(address)
                elif address:
                    store = Store.open_zeo(address, wait=wait)
                else:
                    store = open_store(workflow_dir)
            except StoreError as exc:
                if "params" not in marker:
                    raise
                log.warning("running offline (results go to %s): %s", OUTCOME_FILE, exc)
        if store is not None:
            # a task never needs to wait out an outage: offline, its outcome file is the
            # result; so its commits give up after the start-up wait, not the orchestrator's
            store.reconnect_timeout = min(store.reconnect_timeout, wait)
        args = (marker["task"], int(marker["run_id"]), run_dir, workflow_dir, marker)
        try:
            return cls(store, *args)
        except Exception as exc:
            # the server went away between connecting and reading the run (a warm task
            # connects within milliseconds of its launch): run offline, as if unreachable
            from autopot.store.database import disconnected

            if store is None or not disconnected(exc) or "params" not in marker:
                raise
            log.warning("running offline (results go to %s): %s", OUTCOME_FILE, exc)
            with contextlib.suppress(Exception):
                store.close()
            return cls(None, *args)

    # ------------------------------------------------------------------ access
    @property
    def records(self) -> WorkflowRecords:
        """The workflow's records (other runs, their files), read through the store's façade.

        Offline, a read-only view of the database file (it takes no lock and is consistent
        as of its last complete transaction, also while a server appends to it)."""
        from autopot.store.workflow_records import WorkflowRecords

        store = self.store
        if store is None:
            if self._reader is None:
                from autopot.store.database import Store, WorkflowPaths

                self._reader = Store.open_file(
                    WorkflowPaths(self.workflow_dir).db_file, read_only=True
                )
            store = self._reader
        return WorkflowRecords(self.workflow_dir, store, self.run_name)

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

    @contextlib.contextmanager
    def work(self, kind: str) -> Iterator[None]:
        """Time the task's own computation (``reference``, ``grade``, ``train``, ``md``).

        Pushed as ``work_<kind>_s`` (total seconds) and ``work_<kind>_spans`` ([start, end]
        wall-clock pairs), so a workflow's wall time can be split into the science and
        everything around it: process start-up, database, files, orchestration."""
        start = time.time()
        try:
            yield
        finally:
            end = time.time()
            spans = self._work.setdefault(kind, [])
            spans.append([start, end])
            self.push(f"work_{kind}_spans", [list(s) for s in spans])
            self.push(f"work_{kind}_s", float(sum(b - a for a, b in spans)))

    def add_file(self, name: str | Path) -> None:
        """Mark a produced file as an output (all files get a manifest entry anyway)."""
        self._files.append(str(Path(name)))

    def flush(self) -> None:
        """Commit the pushes so far. If the database cannot take them now, they stay
        buffered and go into the outcome file at the end: a flush never fails a task."""
        pending = self._pending
        if not pending or self.store is None:
            return

        def apply(root: Any) -> None:
            run = self._run()
            for name, value, step in pending:
                run.push(name, value, step)

        try:
            self.store.transact(apply, note=f"{self.label}: push")
        except Exception as exc:  # noqa: BLE001 - server gone, its disk full: keep them
            log.warning("%s: pushes kept for the outcome file: %s", self.label, exc)
            return
        self._pending = []

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
        (self.run_dir / OUTCOME_FILE).unlink(missing_ok=True)
        if self.store is None:
            return self
        run = self._run()
        if run.state in TERMINAL:
            raise StoreError(
                f"run {self.label} is already {run.state}; not running it again", field="state"
            )
        try:
            self.set_state(State.RUNNING, host=socket.gethostname())
        except Exception as exc:  # noqa: BLE001 - the executor reports RUNNING too; go on offline
            log.warning("%s: running offline: %s", self.label, exc)
            self._go_offline()
        return self

    def _go_offline(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            try:
                store.close()
            except Exception:  # noqa: BLE001 - a dead connection may not close cleanly
                log.debug("closing the database connection failed", exc_info=True)

    def _finish(self, state: State, cause: str = "") -> None:
        """Outcome file first, then (if reachable) the database, in one transaction that
        also records the outcome's key: whoever ingests the file later finds it done."""
        outcome = new_outcome(
            state,
            cause=cause,
            pushes=self._pending,
            outputs=self._files,
            manifest=manifest(self.run_dir),
            host=socket.gethostname(),
        )
        write_outcome(self.run_dir, outcome)
        self._pending = []
        if self.store is None:
            return
        try:
            self.store.transact(
                lambda root: apply_outcome(self._run(), outcome, by="task"),
                note=f"{self.label}: {state.value}",
            )
        except Exception as exc:  # noqa: BLE001 - unreachable, disk full: the file has it
            log.warning(
                "%s: %s is in %s; the orchestrator will record it (%s)",
                self.label,
                state.value,
                OUTCOME_FILE,
                exc,
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None or (isinstance(exc, SystemExit) and exc.code in (0, None)):
                self._finish(State.FINISHED)  # sys.exit(0) inside the block is a success
            else:
                cause = (
                    "".join(traceback.format_exception_only(exc_type, exc)).strip().splitlines()[-1]
                )
                (self.run_dir / "traceback.txt").write_text(
                    "".join(traceback.format_exception(exc_type, exc, tb))
                )
                self._pending = []  # results of a failed task are not trusted
                self._finish(State.FAILED, cause=cause)
        finally:
            self._go_offline()
            if self._reader is not None:
                self._reader.close()
