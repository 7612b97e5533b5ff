"""The persistent object model: task types, jobs, runs, and their BTree indexes.

Everything here is a ZODB ``Persistent`` object and is only modified inside a
transaction (see :mod:`autopot.store.database`). Indexes are BTrees/TreeSets so that
state and workflow-run queries over 10^5 runs read a few buckets, not every run, and so
that concurrent inserts of different runs merge instead of conflicting. Parameters and
scalar quantities are indexed the same way (:mod:`autopot.store.value_index`), updated by
:meth:`TaskType.add_run` and :meth:`Run.push` in the transaction that changes the run.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from BTrees.IIBTree import IITreeSet
from BTrees.IOBTree import IOBTree
from BTrees.LLBTree import LLBTree
from BTrees.OOBTree import OOBTree
from persistent import Persistent

from autopot.errors import StoreError
from autopot.store.states import TERMINAL, TRANSITIONS, State
from autopot.store.value_index import ABSENT, QueryIndex

SCHEMA_VERSION = 1


class Provenance(Persistent):
    """Shared by every run created in one process session: packages, host, autopot."""

    def __init__(self, data: dict[str, Any]):
        self.data = dict(data)


class WorkflowRun(Persistent):
    """One execution of an orchestrator under a name; several may share a directory."""

    stop_request: str | None = None  # "cancel" or "drain", written by `orchestrator stop`
    ended: float | None = None
    starts: list[dict[str, Any]] = []  # noqa: RUF012 - read-only default; each start assigns a new list

    def __init__(self, name: str, params: dict[str, Any] | None = None):
        self.name = name
        self.params = dict(params or {})
        self.created = time.time()
        self.state = "CREATED"  # RUNNING, FINISHED, FAILED, STOPPED
        self.owner: dict[str, Any] | None = None  # host, pid, started, heartbeat
        self.events: list[tuple[float, str]] = []
        self.summary: dict[str, Any] = {}

    def log_event(self, text: str, keep: int = 200) -> None:
        events = self.events + [(time.time(), text)]
        self.events = events[-keep:]


class Job(Persistent):
    """One point of a task type's job space. Its parameters never change once created."""

    run_ids: tuple[int, ...] = ()

    def __init__(
        self, task: str, job_id: int, params: dict[str, Any], identity: str, source_hash: str
    ):
        self.task = task
        self.id = job_id
        self.params = params
        self.identity = identity
        self.source_hash = source_hash
        self.created = time.time()


class Run(Persistent):
    """One execution of a job: state, timings, where it ran, what it produced.

    Fields that a new run does not have yet are class-level defaults, so they are not
    pickled until set: a fresh run's record stays small (bytes per run, scan speed). The
    mapping defaults are read-only; every change assigns a new dict (which is also what
    makes ZODB notice the change).
    """

    submitted: float | None = None
    started: float | None = None
    ended: float | None = None
    exit_code: int | None = None
    cause: str = ""
    host: str = ""
    executor: str = ""
    executor_id: str = ""
    attempts: int = 0
    heartbeat: float | None = None
    directory: str = ""  # relative to the workflow directory
    manifest: Mapping[str, tuple[str, int]] = MappingProxyType({})  # relpath -> (sha256, size)
    quantities: Mapping[str, Any] = MappingProxyType({})
    extra: Mapping[str, Any] = MappingProxyType({})

    def __init__(
        self,
        task_type: TaskType,
        run_id: int,
        job: Job,
        params: dict[str, Any],
        run_name: str,
        provenance: Provenance | None,
    ):
        self.task_type = task_type
        self.id = run_id
        self.job = job
        self.params = params
        self.run_name = run_name
        self.state = State.CREATED.value
        now = time.time()
        self.created = now
        self.history: list[tuple[float, str, str]] = [(now, State.CREATED.value, "")]
        self.provenance = provenance

    # ---------------------------------------------------------------- identity
    @property
    def task(self) -> str:
        return self.task_type.name

    @property
    def label(self) -> str:
        return f"{self.task}.{self.id}"

    @property
    def job_params(self) -> dict[str, Any]:
        return self.job.params

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL

    def get(self, name: str, default: Any = None) -> Any:
        """Look a name up as run attribute, job parameter, run parameter, then quantity."""
        if name in _RUN_FIELDS:
            return _RUN_FIELDS[name](self)
        if name in self.job.params:
            return self.job.params[name]
        if name in self.params:
            return self.params[name]
        return self.quantities.get(name, default)

    # ---------------------------------------------------------------- changes
    def set_state(self, state: State | str, cause: str = "", **fields: Any) -> None:
        """Move to ``state`` (checked against TRANSITIONS) and keep the indexes right."""
        new = State(state)
        old = State(self.state)
        if new not in TRANSITIONS[old] and new != old:
            raise StoreError(
                f"run {self.label}: illegal transition {old.value} -> {new.value}", field="state"
            )
        now = time.time()
        if new is State.SUBMITTED:
            self.submitted = now
            self.attempts += 1
            if old in TERMINAL:  # a resubmission starts afresh
                self.ended = None
                self.exit_code = None
        elif new is State.RUNNING and self.started is None:
            self.started = now
        if new in TERMINAL:
            self.ended = now
        for key, value in fields.items():
            if key not in _SETTABLE:
                raise StoreError(
                    f"run {self.label}: {key!r} cannot be set with the state", field=key
                )
            setattr(self, key, value)
        if cause:
            self.cause = cause
        self.history = self.history + [(now, new.value, cause)]
        if new != old:
            self.task_type._reindex_state(self.id, old.value, new.value)
            self.state = new.value

    def push(self, name: str, value: Any, step: int | None = None) -> None:
        """Record a quantity; with ``step``, append to a series ``[(step, value), ...]``."""
        if name in _RUN_FIELDS:
            raise StoreError(f"quantity name {name!r} shadows a run attribute", field=name)
        quantities = dict(self.quantities)
        old = quantities.get(name, ABSENT)
        if step is None:
            quantities[name] = value
        else:
            series = list(quantities.get(name, []))
            series.append((int(step), value))
            quantities[name] = series
        self.quantities = quantities
        self.task_type._reindex_quantity(self.id, name, old, quantities[name])

    def summary(self) -> dict[str, Any]:
        """Plain-data view used by the CLI (table/json/csv) and reports."""
        return {
            "id": self.label,
            "state": self.state,
            "run_name": self.run_name,
            "job_id": self.job.id,
            "created": self.created,
            "started": self.started,
            "ended": self.ended,
            "exit_code": self.exit_code,
            "host": self.host,
            "executor": self.executor,
            "executor_id": self.executor_id,
            "cause": self.cause,
            "directory": self.directory,
            **{f"job.{k}": v for k, v in self.job.params.items()},
            **{f"run.{k}": v for k, v in self.params.items()},
        }


_RUN_FIELDS = {
    "id": lambda r: r.id,
    "task": lambda r: r.task,
    "state": lambda r: r.state,
    "run_name": lambda r: r.run_name,
    "job_id": lambda r: r.job.id,
    "exit_code": lambda r: r.exit_code,
    "host": lambda r: r.host,
    "executor": lambda r: r.executor,
    "executor_id": lambda r: r.executor_id,
    "cause": lambda r: r.cause,
    "created": lambda r: r.created,
    "submitted": lambda r: r.submitted,
    "started": lambda r: r.started,
    "ended": lambda r: r.ended,
    "attempts": lambda r: r.attempts,
    "directory": lambda r: r.directory,
    "duration": lambda r: (r.ended - r.started) if r.ended and r.started else None,
}
RUN_FIELDS = frozenset(_RUN_FIELDS)
_SETTABLE = {"exit_code", "host", "executor", "executor_id", "heartbeat", "directory"}


class TaskType(Persistent):
    """A task type (BlackDynamite's study): schema, jobs, runs, indexes."""

    #: 64-bit prefix of a job identity → job id. Compact integer buckets: creating many
    #: jobs rewrites far fewer bytes than an index keyed by 64-character hex strings.
    #: The full identity is checked on the job; the (astronomically rare) second job
    #: with the same prefix goes to ``job_by_identity``, which also holds the jobs of
    #: databases created before this index existed.
    job_by_hash: Any = None
    #: values of job/run parameters and scalar quantities → run ids (``value_index``).
    #: None in a database written before it existed: queries scan until the first
    #: writable open builds it (:func:`autopot.store.value_index.build`).
    query_index: QueryIndex | None = None

    def __init__(self, name: str, schema: dict[str, Any]):
        self.name = name
        self.schema = schema
        self.jobs = IOBTree()
        self.job_by_hash = LLBTree()
        self.job_by_identity = OOBTree()
        self.runs = IOBTree()
        self.by_state = OOBTree()
        self.by_run_name = OOBTree()
        self.next_job_id = 1
        self.next_run_id = 1
        self.query_index = QueryIndex()

    def _reindex_state(self, run_id: int, old: str | None, new: str) -> None:
        if old is not None and old in self.by_state:
            self.by_state[old].remove(run_id)
        if new not in self.by_state:
            self.by_state[new] = IITreeSet()
        self.by_state[new].insert(run_id)

    def _reindex_quantity(self, run_id: int, name: str, old: Any, new: Any) -> None:
        if self.query_index is not None:
            self.query_index.change("q", name, run_id, old, new)
        elif self._p_jar is not None:
            # no index yet: if a build commits meanwhile, this write must retry (conflict)
            # so that the build's index does not miss this value
            self._p_jar.readCurrent(self)

    def add_job(self, params: dict[str, Any], identity: str, source_hash: str) -> tuple[Job, bool]:
        """Return (job, created); an identical job is returned, never duplicated."""
        key = _identity_key(identity)
        if self.job_by_hash is not None:
            job_id = self.job_by_hash.get(key)
            if job_id is not None and self.jobs[job_id].identity == identity:
                return self.jobs[job_id], False
        existing = self.job_by_identity.get(identity)
        if existing is not None:
            return self.jobs[existing], False
        job = Job(self.name, self.next_job_id, params, identity, source_hash)
        self.jobs[job.id] = job
        if self.job_by_hash is None:
            self.job_by_hash = LLBTree()
        if key not in self.job_by_hash:
            self.job_by_hash[key] = job.id
        else:  # prefix taken by a different identity
            self.job_by_identity[identity] = job.id
        self.next_job_id += 1
        return job, True

    def find_job(self, identity: str) -> Job | None:
        """The job with this identity, if any."""
        if self.job_by_hash is not None:
            job_id = self.job_by_hash.get(_identity_key(identity))
            if job_id is not None and self.jobs[job_id].identity == identity:
                return self.jobs[job_id]
        job_id = self.job_by_identity.get(identity)
        return None if job_id is None else self.jobs[job_id]

    def add_run(
        self, job: Job, params: dict[str, Any], run_name: str, provenance: Provenance | None
    ) -> Run:
        run = Run(self, self.next_run_id, job, params, run_name, provenance)
        self.next_run_id += 1
        self.runs[run.id] = run
        self._reindex_state(run.id, None, run.state)
        if run_name not in self.by_run_name:
            self.by_run_name[run_name] = IITreeSet()
        self.by_run_name[run_name].insert(run.id)
        if self.query_index is not None:
            self.query_index.add_run(run.id, job.params, params)
        job.run_ids = (*job.run_ids, run.id)  # on the job: no extra persistent object per run
        return run

    def runs_of_job(self, job_id: int, run_name: str | None = None) -> list[Run]:
        """Runs of one job, optionally only those of one workflow run."""
        runs = [self.runs[i] for i in self.jobs[job_id].run_ids]
        return [r for r in runs if run_name is None or r.run_name == run_name]


def _identity_key(identity: str) -> int:
    """Signed 64-bit integer from the first 16 hex digits of a sha256 identity."""
    return int.from_bytes(bytes.fromhex(identity[:16]), "big", signed=True)


class Root(Persistent):
    """The single entry point stored at ``root["autopot"]``."""

    def __init__(self) -> None:
        self.version = SCHEMA_VERSION
        self.task_types = OOBTree()
        self.workflow_runs = OOBTree()
        self.created = time.time()


def host_info() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}
