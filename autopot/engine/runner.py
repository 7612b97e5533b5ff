"""Running an orchestrator: one per workflow directory, its ZEO server, its exit status.

* A second orchestrator on the same workflow directory refuses to start (an exclusive
  ``flock`` that the kernel releases even when the first one is killed with SIGKILL).
* The database is served by ZEO on the directory's Unix socket; a server left by a
  killed orchestrator is reused, so a restart resumes against the same records.
* The workflow's exit status is non-zero when it fails: 1 for a failed task or
  orchestrator error, 3 when stopped by request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from autopot.engine.motoko import MotokoConfig
from autopot.errors import AutopotError, WorkflowError

log = logging.getLogger("autopot.engine")

EXIT_OK, EXIT_FAILED, EXIT_STOPPED = 0, 1, 3
LOCK_NAME = "orchestrator.lock"


class OrchestratorLock:
    """Exclusive lock of a workflow directory, holding the owner's pid for ``status``."""

    def __init__(self, directory: Path):
        self.path = directory / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = read_lock_owner(self.path.parent)
            raise WorkflowError(
                f"an orchestrator is already running on this workflow ({owner or 'unknown owner'}); "
                "use 'autopot orchestrator status' or 'stop'",
                file=self.path,
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def read_lock_owner(directory: Path) -> str:
    try:
        return (directory / LOCK_NAME).read_text().strip()
    except OSError:
        return ""


def is_running(directory: Path) -> int | None:
    """PID of the orchestrator holding the workflow's lock, or None."""
    path = directory / LOCK_NAME
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = read_lock_owner(directory).split()
        return int(owner[1]) if len(owner) == 2 and owner[1].isdigit() else -1
    finally:
        os.close(fd)
    return None


def parse_workflow_args(config: MotokoConfig, argv: list[str]) -> dict[str, Any]:
    """Flags declared by the orchestrator module (Motoko's ``populate_arg_parser``)."""
    parser = argparse.ArgumentParser(prog="autopot orchestrator start", add_help=True)
    module = config.orchestrator_module()
    populate = getattr(module, "populate_arg_parser", None)
    if populate is not None:
        populate(parser)
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0:
            raise
        raise WorkflowError(f"invalid workflow arguments: {' '.join(argv)}", file=config.path, field="orchestrator") from None
    return vars(ns)


def run_orchestrator(
    motoko: str | Path,
    *,
    run_name: str | None = None,
    argv: list[str] | None = None,
    params: dict[str, Any] | None = None,
    keep_server: bool = False,
) -> int:
    """Start (or resume) a workflow run in this process; returns the exit status."""
    from autopot.engine.core import Engine, WorkflowStopped
    from autopot.engine.runs import TaskFailed
    from autopot.engine.workflow import Workflow
    from autopot.store.database import Store, WorkflowPaths, socket_alive
    from autopot.store.model import WorkflowRun
    from autopot.store.server import server_pid, start_server, stop_server

    config = MotokoConfig.load(motoko)
    config.schemas()  # every template parses before anything starts
    main = config.load_orchestrator()
    workflow_params = dict(params or {})
    if argv is not None or not params:
        workflow_params.update(parse_workflow_args(config, argv or []))
    run_name = run_name or "default"

    lock = OrchestratorLock(config.directory)
    lock.acquire()
    paths = WorkflowPaths(config.directory)
    started_server = False
    try:
        if not socket_alive(paths.socket):
            start_server(config.directory)
            (paths.db_dir / "owner").write_text("orchestrator\n")
            started_server = True
        elif (paths.db_dir / "owner").exists():
            started_server = True  # left by a killed orchestrator: ours to stop at the end
        store = Store.open_zeo(paths.socket)
        workflow = Workflow(config.path, run_name=run_name, store=store)

        def begin(root: Any) -> bool:
            record = root.workflow_runs.get(run_name)
            resumed = record is not None
            if record is None:
                record = WorkflowRun(run_name, workflow_params)
                root.workflow_runs[run_name] = record
            record.state = "RUNNING"
            record.stop_request = None
            record.owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
            record.log_event("resumed" if resumed else "started")
            return resumed

        resumed = store.transact(begin, note="workflow start")
        print(f"autopot: workflow run {run_name!r} {'resumed' if resumed else 'started'} in {config.directory}", flush=True)
        engine = Engine(workflow)
        workflow.engine = engine
        status, message = EXIT_OK, "finished"
        try:
            asyncio.run(_run_with_signals(engine, main, workflow_params))
        except WorkflowStopped as exc:
            status, message = EXIT_STOPPED, str(exc)
        except (TaskFailed, AutopotError) as exc:
            status, message = EXIT_FAILED, str(exc)
        except Exception as exc:  # noqa: BLE001 - the orchestrator's own bug: record, report, exit 1
            status, message = EXIT_FAILED, f"{type(exc).__name__}: {exc}"
            traceback.print_exc()

        def end(root: Any) -> None:
            record = root.workflow_runs[run_name]
            record.state = {EXIT_OK: "FINISHED", EXIT_FAILED: "FAILED", EXIT_STOPPED: "STOPPED"}[status]
            record.ended = time.time()
            record.log_event(f"{record.state}: {message}")

        store.transact(end, note="workflow end")
        label = {EXIT_OK: "finished", EXIT_FAILED: "FAILED", EXIT_STOPPED: "stopped"}[status]
        print(f"autopot: workflow run {run_name!r} {label}" + ("" if status == EXIT_OK else f": {message}"), flush=True)
        workflow.close()
        return status
    finally:
        if started_server and not keep_server:
            pid = server_pid(config.directory)
            if pid is not None:
                stop_server(pid)
            (paths.db_dir / "owner").unlink(missing_ok=True)
        lock.release()


async def _run_with_signals(engine: Any, main: Any, params: dict[str, Any]) -> Any:
    """SIGTERM/SIGINT: cancel running tasks and stop (as ``orchestrator stop --cancel``)."""
    from autopot.engine.core import WorkflowStopped

    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    stopped: list[str] = []

    def on_signal(signum: int) -> None:
        stopped.append(signal.Signals(signum).name)
        engine.stop_request = "cancel"  # run() cancels running tasks on its way out
        if current is not None:
            current.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await engine.run(main, params)
    except asyncio.CancelledError:
        if stopped:
            raise WorkflowStopped(f"stopped by {stopped[0]}; running tasks cancelled") from None
        raise
