"""The event engine: committed state changes in, futures and callbacks out.

Two sources of events, no polling of the database:

* executors report what they observe (a local process exited, SLURM says TIMEOUT);
* ZEO pushes invalidations of objects other processes committed (a task process set
  its run FINISHED, ``autopot orchestrator stop`` wrote a stop request).

Both only mark work and wake one pump coroutine, which applies executor reports in a
single batched transaction, refreshes the touched runs from a fresh view, resolves the
futures orchestrator code awaits and fires registered callbacks. Errors are never
swallowed: a failing callback or pump fails the workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autopot.errors import DatabaseUnreachable, WorkflowError
from autopot.executors.base import Executor, Outcome, RunSpec
from autopot.store.files import manifest
from autopot.store.outcome import apply_outcome, read_outcome
from autopot.store.states import TERMINAL, State

if TYPE_CHECKING:
    from autopot.engine.runs import RunView
    from autopot.engine.workflow import Workflow

log = logging.getLogger("autopot.engine")


@dataclass
class Handle:
    view: RunView
    future: asyncio.Future[RunView]
    state: str
    oid: bytes | None
    executor: Executor | None = None
    retries: int = 0


@dataclass
class Stats:
    submitted: int = 0
    ended: int = 0
    transactions: int = 0
    events: int = 0
    latencies: list[float] = field(default_factory=list)  # commit→fire, seconds (ZEO events)


class Engine:
    def __init__(self, workflow: Workflow):
        self.workflow = workflow
        self.store = workflow.store
        self.loop: asyncio.AbstractEventLoop | None = None
        self.handles: dict[str, Handle] = {}
        self._oid_labels: dict[bytes, str] = {}
        self._dirty: set[bytes] = set()
        self._outcomes: list[Outcome] = []
        self._wake: asyncio.Event | None = None
        self._listeners: list[tuple[str | None, str, Callable[..., Any]]] = []
        self._callbacks: set[asyncio.Task[Any]] = set()
        self._errors: list[BaseException] = []
        self._executors: dict[str, Executor] = {}
        self._wf_oid: bytes | None = None
        self._invalidation_times: dict[bytes, float] = {}
        self.stop_request: str | None = None
        self.stats = Stats()
        # seconds between "waiting on ..." lines while runs are outstanding
        self.progress_interval = float(os.environ.get("AUTOPOT_PROGRESS_S", "30"))
        self.measure_latency = False
        self._pending_starts: list[Executor] = []
        self._gateways: dict[tuple[str, int], Any] = {}
        # database outage: when it began (monotonic), how often it is reported
        self.db_down_since: float | None = None
        self._db_reported = 0.0
        self.db_report_interval = float(os.environ.get("AUTOPOT_DB_REPORT_S", "30"))
        self.db_timeout = float(getattr(self.store, "reconnect_timeout", 60.0))

    # ------------------------------------------------------------------ wiring
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self.store.zeo:
            self.store.add_invalidation_listener(self._from_zeo_thread)
        record = self.workflow.workflow_record()
        self._wf_oid = record._p_oid if record is not None else None

    def _from_zeo_thread(self, tid: bytes, oids: Any) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._mark_dirty, list(oids), time.time())
        except RuntimeError:
            pass  # loop closing

    def _mark_dirty(self, oids: list[bytes], when: float) -> None:
        hit = False
        for oid in oids:
            if oid in self._oid_labels or oid == self._wf_oid:
                self._dirty.add(oid)
                if self.measure_latency:
                    self._invalidation_times.setdefault(oid, when)
                hit = True
        if hit:
            self._wake_up()

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def executor_for(self, task: str) -> Executor:
        """One executor instance per distinct executor spec, shared by task types."""
        from autopot.engine.motoko import executor_class

        spec = self.workflow.config.task_managers[task].executor
        key = repr(sorted(spec.items()))
        executor = self._executors.get(key)
        if executor is None:
            options = {k: v for k, v in spec.items() if k != "name"}
            executor = executor_class(spec["name"])(self.report, **options)
            executor.gate = self.database_available
            serve = getattr(executor, "serve_tls", None)
            if serve is not None:  # ZEO over mutual TLS for its jobs, served from here
                executor.job_env.update(self.tls_gateway(*serve).job_env())
            self._executors[key] = executor
            self._pending_starts.append(executor)
        return executor

    def tls_gateway(self, host: str, port: int) -> Any:
        """The workflow's TCP+TLS gateway to its ZEO socket (one per orchestrator)."""
        from autopot.store.database import WorkflowPaths
        from autopot.store.tls_gateway import TLSGateway

        gateway = self._gateways.get((host, port))
        if gateway is None:
            paths = WorkflowPaths(self.workflow.directory)
            gateway = TLSGateway(paths.db_dir, paths.socket, host, port).start()
            self._gateways[(host, port)] = gateway
        return gateway

    # ------------------------------------------------------------------ runs
    def track(self, view: RunView) -> Handle:
        handle = self.handles.get(view.label)
        if handle is not None:
            return handle
        assert self.loop is not None
        record = view.record
        handle = Handle(view, self.loop.create_future(), record.state, record._p_oid)
        handle.retries = self.workflow.config.task_managers[view.task].retries
        self.handles[view.label] = handle
        if handle.oid is not None:
            self._oid_labels[handle.oid] = view.label
        if record.state in TERMINAL:
            handle.future.set_result(view)
        return handle

    def future(self, view: RunView) -> asyncio.Future[RunView]:
        """A future for orchestrator code; shielded, so cancelling a waiter (a gather
        being torn down) never cancels the engine's own record of the run."""
        return asyncio.shield(self.track(view).future)

    def report(self, outcome: Outcome) -> None:
        """Executor callback (in the loop thread): queue and wake the pump."""
        self._outcomes.append(outcome)
        self._wake_up()

    async def submit(self, specs: list[RunSpec], executor: Executor) -> None:
        """Hand prepared, claimed runs to their executor; failures become FAILED runs."""
        if not specs:
            return
        await self._start_executors()
        try:
            ids = await executor.submit(specs)
        except Exception as exc:  # noqa: BLE001 - the cause goes into each run
            cause = f"submission failed: {exc}"
            log.error("%s", cause)
            for spec in specs:
                self.report(Outcome(spec.label, State.FAILED, cause=cause))
            return
        for spec, executor_id in zip(specs, ids, strict=True):
            self.handles[spec.label].executor = executor
            self.report(Outcome(spec.label, State.SUBMITTED, executor_id=executor_id))
        self.stats.submitted += len(specs)
        labels = [spec.label for spec in specs]
        log.info(
            "submitted %s%s",
            ", ".join(labels[:6]),
            f" and {len(labels) - 6} more" if len(labels) > 6 else "",
        )

    async def heartbeat(self, interval: float) -> None:
        """Every ``interval`` seconds while runs are outstanding, say what is being waited
        on: a week-long run never goes silent for longer than that."""
        while True:
            await asyncio.sleep(interval)
            flying = self.in_flight()
            if not flying:
                continue
            counts: dict[str, dict[str, int]] = {}
            for handle in flying:
                per_task = counts.setdefault(handle.view.task, {})
                per_task[handle.state] = per_task.get(handle.state, 0) + 1
            log.info(
                "waiting on %d run%s: %s",
                len(flying),
                "s" if len(flying) > 1 else "",
                "; ".join(
                    f"{task} " + ", ".join(f"{n} {state.lower()}" for state, n in sorted(c.items()))
                    for task, c in sorted(counts.items())
                ),
            )

    async def _start_executors(self) -> None:
        while self._pending_starts:
            await self._pending_starts.pop().start()

    # ------------------------------------------------------------------ listeners
    def on(self, task: str | None, state: str, callback: Callable[..., Any]) -> None:
        """``callback(workflow, run)`` whenever a run of ``task`` (None: any) reaches ``state``."""
        self._listeners.append((task, State(state).value, callback))

    def spawn(self, coro: Any, name: str = "") -> asyncio.Task[Any]:
        """Run orchestrator work in the background; its exception fails the workflow."""
        assert self.loop is not None
        task = self.loop.create_task(coro, name=name or None)
        self._callbacks.add(task)
        task.add_done_callback(self._callback_done)
        return task

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        self._callbacks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._errors.append(task.exception())  # type: ignore[arg-type]
            self._wake_up()

    def _fire(self, handle: Handle, state: str) -> None:
        for task, wanted, callback in self._listeners:
            if wanted == state and (task is None or task == handle.view.task):
                result = callback(self.workflow, handle.view)
                if inspect.isawaitable(result):
                    self.spawn(result, name=f"on {handle.view.label} {state}")
                self.stats.events += 1

    # ------------------------------------------------------------------ database outage
    def db_connected(self) -> bool:
        return bool(getattr(self.store, "connected", True))

    async def database_available(self) -> None:
        """Return once the database answers; while it does not, nothing is launched and
        nothing is written (reports stay queued). After the reconnect timeout this raises
        :class:`DatabaseUnreachable`: the workflow ends with exit 5, and every result
        already on disk is ingested by the next start."""
        while not self.db_connected():
            self._note_db_down()
            assert self.db_down_since is not None
            if time.monotonic() - self.db_down_since > self.db_timeout:
                raise DatabaseUnreachable(
                    f"database server unreachable for {self.db_timeout:.0f} s; "
                    "results of running tasks stay in their run directories",
                    file=self.store.description,
                )
            await asyncio.sleep(0.2)
        self._note_db_up()

    def _note_db_down(self) -> None:
        now = time.monotonic()
        if self.db_down_since is None:
            self.db_down_since = now
            self._db_reported = now
            log.warning(
                "database server unreachable (%s): launching nothing until it is back; "
                "giving up after %.0f s",
                self.store.description,
                self.db_timeout,
            )
        elif now - self._db_reported >= self.db_report_interval:
            self._db_reported = now
            log.warning(
                "database server still unreachable after %.0f s (giving up after %.0f s)",
                now - self.db_down_since,
                self.db_timeout,
            )

    def _note_db_up(self) -> None:
        if self.db_down_since is not None:
            log.warning("database server back after %.0f s", time.monotonic() - self.db_down_since)
            self.db_down_since = None
            # commits made while we were cut off may have reached us as a whole-cache
            # invalidation (no per-object event): look at every tracked run again
            self._dirty.update(self._oid_labels)
            self._wake_up()  # and apply the reports queued during the outage

    async def db_watch(self, interval: float = 0.5) -> None:
        """Notice an outage within a second even when nothing else happens, say so
        (within 5 s, then every 30 s), and fail the workflow when it lasts too long."""
        while True:
            await asyncio.sleep(interval)
            if self.db_connected():
                self._note_db_up()
                continue
            try:
                await self.database_available()
            except DatabaseUnreachable as exc:
                self._errors.append(exc)
                self._wake_up()
                return

    # ------------------------------------------------------------------ pump
    async def pump(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._errors:
                raise self._errors[0]
            await self.database_available()
            await self._start_executors()
            self._process()

    def _process(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        dirty, self._dirty = self._dirty, set()
        touched: set[str] = {self._oid_labels[o] for o in dirty if o in self._oid_labels}
        resubmit: list[str] = []
        if outcomes:
            resubmit = self.store.transact(self._apply_outcomes, outcomes, note="engine: outcomes")
            self.stats.transactions += 1
            touched.update(o.label for o in outcomes)
        else:
            self.store.sync()
        now = time.time()
        for label in sorted(touched):
            handle = self.handles.get(label)
            if handle is None:
                continue
            state = handle.view.record.state
            if state != handle.state:
                handle.state = state
                if self.measure_latency and handle.oid in self._invalidation_times:
                    committed = handle.view.record.history[-1][0]
                    self.stats.latencies.append(now - committed)
                # a run being resubmitted (node failure, timeout) is FAILED only until its
                # next attempt is claimed: its waiters wait for that attempt's end
                if state in TERMINAL and not handle.future.done() and label not in resubmit:
                    handle.future.set_result(handle.view)
                    self.stats.ended += 1
                self._fire(handle, state)
        self._invalidation_times.clear()
        if self._wf_oid in dirty:
            self._check_stop_request()
        if resubmit:
            self.spawn(self._resubmit(resubmit), name="resubmit")

    def _apply_outcomes(self, root: Any, outcomes: list[Outcome]) -> list[str]:
        """Write executor observations; the task's own FINISHED/FAILED wins if it wrote one."""
        resubmit: list[str] = []
        events: list[str] = []
        for o in outcomes:
            task, _, ident = o.label.rpartition(".")
            run = root.task_types[task].runs[int(ident)]
            if o.state == "SUBMITTED":
                if o.executor_id and not run.executor_id:
                    run.executor_id = o.executor_id
                continue
            if o.state == "RUNNING":
                if run.state in (State.SUBMITTED.value, State.CREATED.value):
                    run.set_state(State.RUNNING, executor_id=o.executor_id or run.executor_id)
                elif o.executor_id and run.state == State.RUNNING.value:
                    run.executor_id = o.executor_id
                continue
            run_dir = self.workflow.directory / run.directory if run.directory else None
            outcome = read_outcome(run_dir) if run_dir is not None else None
            if outcome is not None and run.state not in TERMINAL:
                # the task's own result, written before it tried the database: it wins
                # over the executor's view (an exit 1 after a failed commit, a kill after
                # the result was written), and is ingested exactly once
                if apply_outcome(run, outcome, exit_code=o.exit_code):
                    run.manifest = manifest(run_dir)  # type: ignore[arg-type]
                    events.append(
                        f"{o.label} {run.state} (from its outcome file)"
                        + (f": {run.cause}" if run.state != State.FINISHED.value else "")
                    )
                    continue
            if run.exit_code is None and o.exit_code is not None:
                run.exit_code = o.exit_code
            if run_dir is not None:
                run.manifest = manifest(run_dir)
            if run.state in TERMINAL:
                continue
            handle = self.handles.get(o.label)
            budget = handle.retries if handle is not None else 0
            if o.retry and run.attempts <= budget:
                run.set_state(State.FAILED, o.cause + " (resubmitting)", exit_code=o.exit_code)
                resubmit.append(o.label)
                events.append(f"{o.label} {o.cause}; resubmitted")
                continue
            run.set_state(o.state, o.cause, exit_code=o.exit_code)
            events.append(f"{o.label} {o.state}" + (f": {o.cause}" if o.cause else ""))
        if events:
            record = self.workflow.workflow_record(root)
            if record is not None:
                for text in events:
                    record.log_event(text)
        return resubmit

    async def _resubmit(self, labels: list[str]) -> None:
        views = [self.handles[label].view for label in labels]
        await self.workflow.resubmit(views)

    def _check_stop_request(self) -> None:
        record = self.workflow.workflow_record()
        request = getattr(record, "stop_request", None)
        if request and request != self.stop_request:
            self.stop_request = request
            log.warning("stop requested (%s)", request)
            if request == "cancel":  # stop now: cancel running tasks (in run()), end
                self._errors.append(WorkflowStopped("stopped by request; running tasks cancelled"))
                self._wake_up()
            # "drain": running tasks finish; the next create_tasks raises WorkflowStopped

    async def cancel_all(self) -> None:
        by_executor: dict[int, tuple[Executor, list[str]]] = {}
        for label, handle in self.handles.items():
            if handle.executor is not None and not handle.future.done():
                by_executor.setdefault(id(handle.executor), (handle.executor, []))[1].append(label)
        for executor, labels in by_executor.values():
            await executor.cancel(labels)

    def in_flight(self) -> list[Handle]:
        return [h for h in self.handles.values() if not h.future.done()]

    # ------------------------------------------------------------------ lifetime
    async def run(self, main: Callable[..., Any], params: dict[str, Any]) -> Any:
        """Run ``main(workflow, **params)`` with the pump; then wait for stragglers."""
        await self.start()
        pump = asyncio.get_running_loop().create_task(self.pump(), name="pump")
        beat = asyncio.get_running_loop().create_task(
            self.heartbeat(self.progress_interval), name="heartbeat"
        )
        watch = asyncio.get_running_loop().create_task(self.db_watch(), name="db watch")
        try:
            main_task = self.spawn(main(self.workflow, **params), name="orchestrator main")
            self._callbacks.discard(main_task)  # its errors propagate directly
            result = await _first(main_task, pump)
            # Event-style orchestrators return early: wait for runs and callbacks.
            while True:
                pending = [asyncio.shield(h.future) for h in self.in_flight()] + list(
                    self._callbacks
                )
                if not pending:
                    break
                waiter = asyncio.ensure_future(asyncio.gather(*pending))
                await _first(waiter, pump)
            if self._errors:
                raise self._errors[0]
            return result
        finally:
            pump.cancel()
            beat.cancel()
            watch.cancel()
            await asyncio.gather(pump, beat, watch, return_exceptions=True)
            if self.stop_request == "cancel":
                await self.cancel_all()
                await self._drain(timeout=15.0)  # record the cancellations executors report
            else:  # runs ended in the database whose processes are still exiting
                ended = [label for label, h in self.handles.items() if h.future.done()]
                for executor in self._executors.values():
                    await executor.settle(ended, timeout=30.0)
            await self.shutdown()

    async def _drain(self, timeout: float) -> None:
        """Process reports without the pump until nothing is in flight or time is up."""
        assert self.loop is not None and self._wake is not None
        deadline = self.loop.time() + timeout
        while self.in_flight() and self.loop.time() < deadline:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), deadline - self.loop.time())
            if not self.db_connected():
                return  # the reports wait for the next start
            self._process()

    async def shutdown(self) -> None:
        for task in list(self._callbacks):
            task.cancel()
        await asyncio.gather(*self._callbacks, return_exceptions=True)
        for executor in self._executors.values():
            await executor.close()
        for gateway in self._gateways.values():
            gateway.stop()
        if self._outcomes and self.db_connected():  # flush what executors reported last
            self._process()  # (with the database gone they wait for the next start)


class WorkflowStopped(WorkflowError):
    """The user asked the orchestrator to stop."""


async def _first(task: asyncio.Future[Any], pump: asyncio.Task[Any]) -> Any:
    """Await ``task``; if the pump dies first, cancel ``task`` and raise the pump's error."""
    done, _ = await asyncio.wait({task, pump}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    exc = pump.exception() if not pump.cancelled() else None
    raise exc if exc is not None else WorkflowError("engine stopped", field="engine")
