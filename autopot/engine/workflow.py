"""The Workflow API orchestrator code and users see, read like the AutoPot paper:

    runs = await workflow.sp_calc.create_tasks(cfg_fname=[...])   # create, submit, wait
    workflow.sp_calc.select("state = FINISHED")
    Workflow("motoko.yaml").train.runs[-1]                         # offline, after the run

The same object works offline (queries over the database: file or live ZEO server) and
inside a running orchestrator (where ``engine`` is set and creating tasks submits them).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autopot.engine.motoko import MotokoConfig, TaskManagerConfig
from autopot.engine.runs import RunList, RunView
from autopot.errors import WorkflowError
from autopot.store.schema import TaskSchema
from autopot.store.states import State

if TYPE_CHECKING:
    from autopot.store.workflow_records import WorkflowRecords

log = logging.getLogger("autopot.workflow")


class UnknownTaskManager(WorkflowError, AttributeError):
    """``workflow.<name>`` for a task manager motoko.yaml does not declare."""


class TaskManager:
    """One task type of the workflow: create runs, select them, react to them."""

    def __init__(self, workflow: Workflow, config: TaskManagerConfig, schema: TaskSchema):
        self.workflow = workflow
        self.config = config
        self.schema = schema
        self.name = config.name

    # ------------------------------------------------------------------ creating
    def create_tasks(self, run_params: dict[str, Any] | None = None, **job_params: Any) -> RunList:
        """Create one run per point of the job space and submit the new ones.

        List values of scalar parameters expand to several runs. Jobs that already have a
        live run in this workflow run are not repeated (restart = resume). Returns at once;
        ``await`` the returned list to wait until every run has ended.
        """
        from autopot.engine import rundir
        from autopot.store.records import create_runs

        wf = self.workflow
        engine = wf.require_engine()
        if engine.stop_request:
            from autopot.engine.core import WorkflowStopped

            raise WorkflowStopped(
                f"not creating {self.name} tasks: stop requested ({engine.stop_request})"
            )
        job_params = {k: _absolute_if_file(self.schema, k, v) for k, v in job_params.items()}
        points = self.schema.expand_jobs(job_params)  # validates before anything is stored
        for point in points:
            rundir.check_inputs(self.schema, point)
        run_values = {**self.config.run_defaults, **(run_params or {})}
        pairs = wf.store.transact(
            lambda root: [
                (r.id, created, r.state)
                for r, created in create_runs(
                    root, self.schema, job_params, run_values, run_name=wf.run_name
                )
            ],
            note=f"create {self.name} runs",
        )
        views = RunList([RunView(wf, self.name, run_id) for run_id, _, _ in pairs], wf)
        fresh = [
            v for (_, _, state), v in zip(pairs, views, strict=True) if state == State.CREATED.value
        ]
        inflight = [
            v
            for (_, _, state), v in zip(pairs, views, strict=True)
            if state in (State.SUBMITTED.value, State.RUNNING.value)
        ]
        for view in views:
            engine.track(view)
        if fresh:
            engine.spawn(self._submit(fresh), name=f"submit {self.name}")
        if inflight:
            engine.spawn(wf.reconcile(inflight), name=f"reconcile {self.name}")
        return views

    async def _submit(self, views: list[RunView]) -> None:
        await self.workflow.submit(views)

    # ------------------------------------------------------------------ querying
    def select(self, where: str | None = None, *, all_run_names: bool = False) -> RunList:
        """Runs of this task matching BlackDynamite-style constraints, in id order.

        Restricted to this workflow run unless ``where`` names ``run_name`` or
        ``all_run_names`` is set.
        """
        from autopot.store import query

        task_type = self.workflow.store.root.task_types.get(self.name)
        if task_type is None:
            return RunList([], self.workflow)
        constraints = [where] if where else []
        if not all_run_names and "run_name" not in (where or ""):
            constraints.append(f"run_name = {self.workflow.run_name!r}")
        runs = query.select(task_type, constraints)
        return RunList([RunView(self.workflow, self.name, r.id) for r in runs], self.workflow)

    @property
    def runs(self) -> RunList:
        """Every run of this task in this workflow run, oldest first."""
        return self.select()

    # ------------------------------------------------------------------ events
    def on(self, state: str = "FINISHED") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``callback(workflow, run)`` each time a run of this task reaches ``state``."""

        def register(callback: Callable[..., Any]) -> Callable[..., Any]:
            self.workflow.require_engine().on(self.name, state, callback)
            return callback

        return register

    def __repr__(self) -> str:
        return f"<task manager {self.name} ({self.config.template})>"


def _absolute_if_file(schema: TaskSchema, name: str, value: Any) -> Any:
    """Input paths are stored absolute: a workflow is restartable from any cwd."""
    param = schema.job.get(name)
    if param is None or not param.file:
        return value

    def fix(v: Any) -> Any:
        if isinstance(v, str) and v:
            return str(Path(v).resolve())
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return fix(value)


class Workflow:
    """A workflow: its motoko.yaml, task managers, database and (while running) engine."""

    def __init__(
        self,
        motoko: str | Path = "motoko.yaml",
        *,
        run_name: str | None = None,
        store: Any = None,
        read_only: bool = False,
        workflow_dir: str | Path | None = None,
    ):
        self.config = MotokoConfig.load(motoko, workflow_dir)
        self.directory: Path = self.config.directory
        self.schemas = self.config.schemas()
        self.managers = {
            name: TaskManager(self, cfg, self.schemas[name])
            for name, cfg in self.config.task_managers.items()
        }
        self._store = store
        self._read_only = read_only
        self._run_name = run_name
        self.engine: Any = None

    # ------------------------------------------------------------------ access
    def __getattr__(self, name: str) -> TaskManager:
        managers = self.__dict__.get("managers", {})
        if name in managers:
            return managers[name]
        raise UnknownTaskManager(
            f"workflow has no task manager {name!r} (declared: {', '.join(managers)})",
            file=self.__dict__["config"].path if "config" in self.__dict__ else None,
            field="task_managers",
        )

    def __getitem__(self, name: str) -> TaskManager:
        try:
            return self.managers[name]
        except KeyError:
            raise WorkflowError(
                f"unknown task manager {name!r}", file=self.config.path, field="task_managers"
            ) from None

    @property
    def store(self) -> Any:
        if self._store is None:
            from autopot.store.database import open_store

            self._store = open_store(
                self.directory, read_only=self._read_only, create=not self._read_only
            )
        return self._store

    @property
    def run_name(self) -> str:
        """This workflow run's name; offline, the most recently started one."""
        if self._run_name is None:
            from autopot.store.workflow_records import latest_run_name

            self._run_name = latest_run_name(self.store.root) or "default"
        return self._run_name

    @property
    def records(self) -> WorkflowRecords:
        """This workflow run's records, read through the store's façade."""
        from autopot.store.workflow_records import WorkflowRecords

        return WorkflowRecords(self.directory, self.store, self.run_name)

    def workflow_record(self, root: Any = None) -> Any:
        root = root if root is not None else self.store.root
        return root.workflow_runs.get(self.run_name)

    def require_engine(self) -> Any:
        if self.engine is None:
            raise WorkflowError(
                "creating tasks needs a running orchestrator (autopot orchestrator start)",
                field="engine",
            )
        return self.engine

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Workflow:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ events
    def on(self, task: str | None, state: str, callback: Callable[..., Any]) -> None:
        self.require_engine().on(task, state, callback)

    def when_all(self, runs: RunList, callback: Callable[..., Any]) -> None:
        """``callback(workflow, runs)`` once every run of ``runs`` has ended."""
        import inspect

        async def waiter() -> None:
            await runs.settled()
            result = callback(self, runs)
            if inspect.isawaitable(result):
                await result

        self.require_engine().spawn(waiter(), name="when_all")

    def log(self, text: str) -> None:
        """Record a workflow-level event (shown by ``autopot orchestrator status``) and log it."""
        log.info("%s", text)

        def write(root: Any) -> None:
            record = self.workflow_record(root)
            if record is not None:
                record.log_event(text)

        self.store.transact(write, note="workflow event")

    def update_summary(self, **items: Any) -> None:
        """Merge ``items`` into this workflow run's summary (what reports and status show)."""

        def write(root: Any) -> None:
            record = self.workflow_record(root)
            if record is not None:
                record.summary = {**record.summary, **items}

        self.store.transact(write, note="workflow summary")

    @property
    def summary(self) -> dict[str, Any]:
        record = self.workflow_record()
        return dict(record.summary) if record is not None else {}

    # ------------------------------------------------------------------ submission
    def _marker(self, view: RunView) -> dict[str, Any]:
        access = self.require_engine().executor_for(view.task).db_access
        return {
            "workflow_dir": str(self.directory),
            "db_address": self.store.description if self.store.zeo and access == "socket" else "",
            "db": access,
            "task": view.task,
            "run_id": view.id,
            "run_name": self.run_name,
            "params": {**view.record.params, **view.record.job.params},
            "run_param_names": sorted(view.record.params),  # the rest are job parameters
        }

    async def submit(self, views: list[RunView]) -> None:
        """Prepare run directories, claim the runs (CREATED/FAILED → SUBMITTED), submit."""
        from autopot.engine import rundir
        from autopot.executors.base import RunSpec

        engine = self.require_engine()
        await engine.database_available()  # nothing is launched while the database is gone
        prepared = []
        for view in views:
            record = view.record
            schema = self.schemas[view.task]
            try:
                run_dir = rundir.prepare(
                    schema, self.directory, view.id, record.job.params, self._marker(view)
                )
            except Exception as exc:  # noqa: BLE001 - becomes the run's failure cause
                from autopot.executors.base import Outcome

                engine.report(
                    Outcome(view.label, State.FAILED, cause=f"cannot prepare run directory: {exc}")
                )
                continue
            prepared.append((view, run_dir))

        def claim(root: Any) -> list[tuple[RunView, Path, int]]:
            out = []
            for view, run_dir in prepared:
                run = root.task_types[view.task].runs[view.id]
                if run.state in (State.CREATED.value, State.FAILED.value, State.CANCELLED.value):
                    executor = engine.executor_for(view.task)
                    run.directory = str(run_dir.relative_to(self.directory))
                    run.set_state(State.SUBMITTED, executor=executor.name, executor_id="")
                    out.append((view, run_dir, run.attempts))
            return out

        claimed = self.store.transact(claim, note="claim runs")
        by_executor: dict[int, tuple[Any, list[RunSpec]]] = {}
        socket_address = self.store.description if self.store.zeo else ""
        for view, run_dir, attempt in claimed:
            executor = engine.executor_for(view.task)
            # tasks without database access get no address at all (not even the socket)
            env_base = {
                "AUTOPOT_DB_ADDRESS": socket_address if executor.db_access == "socket" else ""
            }
            spec = RunSpec(
                task=view.task,
                run_id=view.id,
                label=view.label,
                run_dir=run_dir,
                env={**env_base, "AUTOPOT_RUN_DIR": str(run_dir), "AUTOPOT_PYTHON": _python()},
                run_params=dict(view.record.params),
                attempt=attempt,
            )
            by_executor.setdefault(id(executor), (executor, []))[1].append(spec)
        for executor, specs in by_executor.values():
            await engine.submit(specs, executor)

    async def resubmit(self, views: list[RunView]) -> None:
        await self.submit(views)

    async def reconcile(self, views: list[RunView]) -> None:
        """Runs left SUBMITTED/RUNNING by a previous orchestrator: watch, settle or resubmit."""
        from autopot.executors.base import PID_FILE, Outcome, exit_cause, read_exit_file
        from autopot.store.outcome import read_outcome

        engine = self.require_engine()
        await engine.database_available()
        lost = []
        for view in views:
            record = view.record
            executor = engine.executor_for(view.task)
            run_dir = view.directory
            # adopt also without a recorded id: executors find their jobs by pid file / token
            if await executor.adopt(view.label, record.executor_id or "", run_dir):
                engine.handles[view.label].executor = executor
                continue
            code = read_exit_file(run_dir)
            outcome = read_outcome(run_dir)
            if outcome is not None:  # its result is on disk: ingested, never re-run
                engine.report(
                    Outcome(
                        view.label,
                        State(outcome["state"]),
                        exit_code=code,
                        cause=outcome.get("cause", ""),
                    )
                )
            elif code is not None:  # it ended while nobody watched: take its exit code
                cause, retry = exit_cause(code) if code else ("", False)
                engine.report(
                    Outcome(
                        view.label,
                        State.FINISHED if code == 0 else State.FAILED,
                        exit_code=code,
                        cause=cause,
                        retry=retry,
                    )
                )
            elif not (run_dir / PID_FILE).exists() and record.started is None:
                lost.append(
                    (
                        view,
                        "never started: the orchestrator stopped before the task did; resubmitting",
                    )
                )
            elif record.attempts <= self.config.task_managers[view.task].retries + LOST_RETRIES:
                # vanished without an outcome or an exit status: killed together with the
                # orchestrator (a crash of the machine, kill of the process group), not a
                # failure of the task; resubmitted beyond the task's own retry budget
                lost.append(
                    (
                        view,
                        "lost: the task process vanished while the orchestrator was down; resubmitting",
                    )
                )
            else:
                engine.report(
                    Outcome(
                        view.label,
                        State.FAILED,
                        cause="lost: the task process vanished while the orchestrator was down",
                    )
                )
        if lost:

            def mark(root: Any) -> None:
                for view, cause in lost:
                    root.task_types[view.task].runs[view.id].set_state(State.FAILED, cause)

            self.store.transact(mark, note="mark lost runs")
            await self.submit([view for view, _ in lost])


#: Extra attempts for runs that vanished with no trace while the orchestrator was down
#: (no outcome file, no exit status): infrastructure, so not charged to ``retries``.
LOST_RETRIES = 3


def _python() -> str:
    import sys

    return os.environ.get("AUTOPOT_PYTHON") or sys.executable
