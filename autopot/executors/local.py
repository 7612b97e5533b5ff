"""Local executor: asyncio subprocesses with bounded concurrency.

Each run is ``/bin/sh -c 'sh ./run.sh ...'`` in its run directory (a constant command,
see :data:`TASK_COMMAND`), stdout/stderr captured into the run directory, in its own
session so that an orchestrator crash does not kill tasks and a cancel kills the whole
process group. Exits are seen immediately (the process is our child), so no polling.

Warm start (option ``warm``, on by default; ``AUTOPOT_WARM=0`` turns the default off):
runs whose ``run.sh`` is the stock ``exec python3 doIt.py`` are forked from a server that
imported numpy, ASE, ZODB/ZEO and autopot once (:mod:`autopot.executors.warm`), which
saves a short task most of its start-up. Same pid/exit files, logs, states and causes;
any other run, or any run once that server cannot be used, takes the cold path above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any, Protocol

from autopot.executors.base import (
    EXIT_FILE,
    PID_FILE,
    STDERR,
    STDOUT,
    TASK_COMMAND,
    Executor,
    Outcome,
    RunSpec,
    exit_cause,
    read_exit_file,
    refuse_unknown_options,
    tail,
)
from autopot.executors.warm import DEFAULT_PRELOAD, ForkServer
from autopot.store.states import State

log = logging.getLogger("autopot.executors.local")

#: ``AUTOPOT_WARM=0`` makes cold the default (the ``warm`` option still wins).
WARM_ENV = "AUTOPOT_WARM"


class _Process(Protocol):
    """What the executor needs of a task's top process, cold (asyncio) or warm."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int | None: ...


#: the local executor's options (motoko.yaml ``executor: {name: local, ...}``)
LOCAL_OPTIONS = ("max_parallel", "warm", "preload", "db")


class LocalExecutor(Executor):
    name = "local"

    def __init__(
        self,
        report: Any,
        *,
        max_parallel: int | None = None,
        warm: bool | None = None,
        preload: list[str] | None = None,
        db: str = "socket",
        **options: Any,
    ):
        from autopot.errors import ExecutorError

        refuse_unknown_options("local", options, LOCAL_OPTIONS)
        super().__init__(report)
        if max_parallel is not None and (
            isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1
        ):
            raise ExecutorError(
                f"expected a positive integer, got {max_parallel!r}", field="executor.max_parallel"
            )
        self.max_parallel = int(max_parallel or os.cpu_count() or 1)
        if db not in ("socket", "none"):
            raise ExecutorError(
                f"expected socket (default) or none, got {db!r}", field="executor.db"
            )
        #: ``none``: tasks never connect; their outcome files are ingested in the engine's
        #: batched transactions (saves a ZEO connection and two commits, ~30 ms, per run)
        self.db_access = db
        if warm is None:
            warm = os.environ.get(WARM_ENV, "1").strip().lower() not in ("0", "false", "no", "off")
        if not isinstance(warm, bool):
            raise ExecutorError("expected true or false", field="executor.warm")
        if preload is not None and (
            not isinstance(preload, list) or not all(isinstance(m, str) for m in preload)
        ):
            raise ExecutorError("expected a list of module names", field="executor.preload")
        #: the fork server of warm runs (None: every run starts cold)
        self.warm: ForkServer | None = (
            ForkServer([*DEFAULT_PRELOAD, *(preload or [])]) if warm else None
        )
        #: how many runs started each way (what tests and the bench check)
        self.started = {"warm": 0, "cold": 0}
        self._slots = asyncio.Semaphore(self.max_parallel)
        self._procs: dict[str, _Process] = {}
        self._cancelled: set[str] = set()
        self._waiters: set[asyncio.Task[None]] = set()
        self._by_label: dict[str, asyncio.Task[None]] = {}
        self._seq = 0
        #: the orchestrator is stopping (settle or close was called): launch nothing more
        self._stopping = False

    async def submit(self, specs: list[RunSpec]) -> list[str]:
        ids = []
        for spec in specs:
            self._seq += 1
            queue_id = f"local-{os.getpid()}-{self._seq}"
            task = asyncio.get_running_loop().create_task(
                self._run(spec, queue_id), name=spec.label
            )
            self._waiters.add(task)
            self._by_label[spec.label] = task
            task.add_done_callback(self._forget)
            ids.append(queue_id)
        return ids

    async def _run(self, spec: RunSpec, queue_id: str) -> None:
        async with self._slots:
            if self.gate is not None:
                try:
                    await self.gate()  # no launch while the database is unreachable
                except Exception:  # noqa: BLE001 - the engine is giving up; a restart resubmits
                    return
            if self._stopping:  # e.g. the workflow just failed: a restart resubmits it
                return
            if spec.label in self._cancelled:
                await self.emit(
                    Outcome(spec.label, State.CANCELLED, cause="cancelled before start")
                )
                return
            (spec.run_dir / EXIT_FILE).unlink(missing_ok=True)
            (spec.run_dir / PID_FILE).unlink(missing_ok=True)
            env = {**os.environ, **spec.env}
            proc: _Process | None = await self._start_warm(spec, env)
            if proc is None:
                try:
                    proc = await self._start_cold(spec, env)
                except OSError as exc:
                    await self.emit(
                        Outcome(spec.label, State.FAILED, cause=f"cannot start task: {exc}")
                    )
                    return
            self._procs[spec.label] = proc
            if spec.label in self._cancelled:  # cancelled while it was being started
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
            await self.emit(Outcome(spec.label, State.RUNNING, executor_id=str(proc.pid)))
            code = await proc.wait()
            self._procs.pop(spec.label, None)
        await self.emit(self._outcome(spec.label, spec.run_dir, code, str(proc.pid)))

    async def _start_warm(self, spec: RunSpec, env: dict[str, str]) -> _Process | None:
        """Fork the run from the warm-start server; None: it goes cold (and why is logged)."""
        if self.warm is None:
            return None
        reason = self.warm.cold_reason(spec.run_dir, env)
        if reason:
            log.debug("%s starts cold: %s", spec.label, reason)
            return None
        proc = await self.warm.launch(spec.run_dir, env)
        if proc is not None:
            self.started["warm"] += 1
        return proc

    async def _start_cold(self, spec: RunSpec, env: dict[str, str]) -> _Process:
        with (
            open(spec.run_dir / STDOUT, "ab") as out,
            open(spec.run_dir / STDERR, "ab") as err,
        ):
            proc = await asyncio.create_subprocess_exec(
                *TASK_COMMAND,
                cwd=spec.run_dir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.started["cold"] += 1
        return proc

    def _outcome(self, label: str, run_dir: Path, code: int | None, pid: str) -> Outcome:
        if label in self._cancelled:
            return Outcome(
                label, State.CANCELLED, exit_code=code, cause="cancelled", executor_id=pid
            )
        if code is None:  # a warm task whose server died and that left no exit file
            return Outcome(
                label,
                State.FAILED,
                cause="task ended without an exit code (its warm-start server was gone)",
                executor_id=pid,
                retry=True,  # its wrapper was killed: a crash, not the task's verdict
            )
        if code == 0:
            return Outcome(label, State.FINISHED, exit_code=0, executor_id=pid)
        cause, retry = exit_cause(code)
        last = tail(run_dir / STDERR, lines=1)
        if last and not retry:  # a killed task's last line says nothing about the kill
            cause += f": {last}"
        return Outcome(
            label, State.FAILED, exit_code=code, cause=cause, executor_id=pid, retry=retry
        )

    async def cancel(self, labels: list[str]) -> None:
        for label in labels:
            self._cancelled.add(label)
            proc = self._procs.get(label)
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)

    async def adopt(self, label: str, executor_id: str, run_dir: Path) -> bool:
        """Watch a task process left by a dead orchestrator via a pidfd (no polling)."""
        try:
            pid = int(executor_id)
        except ValueError:  # queued id: the wrapper records its pid when it starts
            try:
                pid = int((run_dir / PID_FILE).read_text().strip())
            except (OSError, ValueError):
                return False
        if not _is_our_task(pid, run_dir):
            return False
        try:
            fd = os.pidfd_open(pid)
        except (ProcessLookupError, OSError):
            return False
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def exited() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(fd, exited)

        async def watch() -> None:
            try:
                await done
            finally:
                loop.remove_reader(fd)
                os.close(fd)
            code = read_exit_file(run_dir)
            if code is None:
                await self.emit(
                    Outcome(
                        label,
                        State.FAILED,
                        cause="task ended while the orchestrator was down; exit code unknown",
                        executor_id=executor_id,
                        retry=True,  # its wrapper was killed too: a crash, not a verdict
                    )
                )
            else:
                await self.emit(self._outcome(label, run_dir, code, executor_id))

        task = loop.create_task(watch(), name=f"adopt {label}")
        self._waiters.add(task)
        task.add_done_callback(self._waiters.discard)
        return True

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._waiters.discard(task)
        if self._by_label.get(task.get_name()) is task:
            del self._by_label[task.get_name()]

    async def settle(self, labels: list[str], timeout: float) -> None:
        # The engine settles when it stops: a run still waiting for a slot must not start
        # now (it would start against a database about to go away, maybe a failed one).
        self._stopping = True
        tasks = [self._by_label[label] for label in labels if label in self._by_label]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def close(self) -> None:
        self._stopping = True
        for task in list(self._waiters):
            task.cancel()
        for task in list(self._waiters):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.warm is not None:
            await self.warm.close()


def _is_our_task(pid: int, run_dir: Path) -> bool:
    """The pid is alive and runs in that run directory (guards against pid reuse)."""
    try:
        return Path(f"/proc/{pid}/cwd").resolve() == run_dir.resolve()
    except OSError:
        return False
