"""Running an orchestrator: one per workflow directory, its ZEO server, its exit status.

* A second orchestrator on the same workflow directory refuses to start (an exclusive
  ``flock`` that the kernel releases even when the first one is killed with SIGKILL).
* The database is served by ZEO on the directory's Unix socket; a server left by a
  killed orchestrator is reused, so a restart resumes against the same records.
* The workflow's exit status says how it ended (:class:`autopot.errors.ExitCode`):
  0 finished/converged, 1 a run failed, 3 stopped, 4 finished without converging,
  5 infrastructure; bad input (2) is refused before anything is written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import fcntl
import hashlib
import inspect
import logging
import os
import re
import signal
import socket
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

from autopot.engine.motoko import MotokoConfig
from autopot.errors import (
    AutopotError,
    DatabaseUnreachable,
    ExitCode,
    WorkflowError,
    database_error,
    os_error,
)
from autopot.logsetup import add_log_file, remove_handler

log = logging.getLogger("autopot.engine")

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


class _FlagError(Exception):
    """argparse's complaint, caught instead of printing usage and exiting."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _FlagError(message)


class _HelpFormatter(argparse.HelpFormatter):
    """Shows each flag once, in its hyphen spelling; the underscore aliases still parse."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        shown = [o for o in action.option_strings if not (o.startswith("--") and "_" in o)]
        if not shown or shown == action.option_strings:
            return super()._format_action_invocation(action)
        clone = argparse.Action(shown, action.dest, nargs=action.nargs, metavar=action.metavar)
        return super()._format_action_invocation(clone)


def _workflow_parser(config: MotokoConfig) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="autopot orchestrator start",
        add_help=False,
        allow_abbrev=False,
        formatter_class=_HelpFormatter,
    )
    module = config.orchestrator_module()
    populate = getattr(module, "populate_arg_parser", None)
    if populate is not None:
        if len(inspect.signature(populate).parameters) >= 2:  # wants the tasks' schemas (defaults)
            populate(parser, config.schemas())
        else:
            populate(parser)
    return parser


def workflow_flags_help(config: MotokoConfig) -> str:
    """The orchestrator module's flags, as ``orchestrator start --help`` shows them."""
    parser = _workflow_parser(config)
    parser.usage = argparse.SUPPRESS
    text = parser.format_help().strip()
    text = text.split("\n", 1)[1] if text.startswith("options:") else text
    aliases = any(
        o.startswith("--") and "_" in o for a in parser._actions for o in a.option_strings
    )
    return text + (
        "\n\n  The underscore spellings of these flags (--atom_types) are accepted too."
        if aliases
        else ""
    )


def _flag_error(parser: argparse.ArgumentParser, message: str, argv: list[str]) -> tuple[str, str]:
    """(flag, reason) from argparse's message, naming the flag the user typed."""
    match = re.match(r"argument ([^:]+): (.*)", message)
    if match:
        names = match.group(1).split("/")
        typed = [n for n in names if n in argv]
        return (typed or [n for n in names if n.startswith("--")] or names)[0], match.group(2)
    match = re.match(r"unrecognized arguments: (.*)", message)
    if match:
        first = match.group(1).split()[0]
        known = [o for a in parser._actions for o in a.option_strings]
        hint = difflib.get_close_matches(first.split("=")[0], known, n=1)
        if first.startswith("-"):
            return first, "unknown flag" + (f" (did you mean {hint[0]}?)" if hint else "")
        return (
            first,
            "unexpected value (a flag takes this many values; quote nothing, separate with spaces)",
        )
    return "flags", message


def _options_tokens(parser: argparse.ArgumentParser, path: Path) -> list[str]:
    """A workflow-options YAML (``grades: [100, 10, 2]``, ``md-temperature: 300``) as the
    flags it stands for; each key is checked alone so an error names the file and key."""
    import json

    from autopot.yamlfile import read_yaml_mapping

    data = read_yaml_mapping(path, WorkflowError)
    if {"task_managers", "orchestrator"} & set(data):
        raise WorkflowError(
            "this is a motoko.yaml; give it with -c/--motoko, options with --config", file=path
        )
    actions = {a.dest: a for a in parser._actions if a.option_strings}
    tokens: list[str] = []
    for key, value in data.items():
        dest = str(key).lstrip("-").replace("-", "_")
        action = actions.get(dest)
        if action is None:
            hint = difflib.get_close_matches(dest, list(actions), n=1)
            raise WorkflowError(
                "unknown option" + (f" (did you mean {hint[0]!r}?)" if hint else ""),
                file=path,
                field=str(key),
            )
        flag = next(o for o in action.option_strings if o.startswith("--"))
        if action.nargs == 0:  # on/off flags
            if not isinstance(value, bool):
                raise WorkflowError(
                    f"expected true or false, got {value!r}", file=path, field=str(key)
                )
            mine = [flag] if value else []
        elif value is None:
            mine = []
        elif isinstance(value, dict):
            mine = [flag, json.dumps(value)]
        elif isinstance(value, list):
            if action.nargs not in ("+", "*"):
                raise WorkflowError(
                    f"expected one value, got a list {value!r}", file=path, field=str(key)
                )
            mine = [flag, *map(str, value)]
        else:
            mine = [flag, str(value)]
        try:
            parser.parse_args(mine)
        except _FlagError as exc:
            raise WorkflowError(
                _flag_error(parser, str(exc), mine)[1], file=path, field=str(key)
            ) from None
        tokens += mine
    return tokens


def parse_workflow_args(
    config: MotokoConfig, argv: list[str], options_file: Path | None = None
) -> dict[str, Any]:
    """Flags declared by the orchestrator module (Motoko's ``populate_arg_parser``), after
    the options file's values: a flag on the command line overrides the file."""
    parser = _workflow_parser(config)
    tokens = _options_tokens(parser, options_file) if options_file is not None else []
    try:
        ns = parser.parse_args(tokens + list(argv))
    except _FlagError as exc:
        flag, reason = _flag_error(parser, str(exc), argv)
        raise WorkflowError(reason, field=flag) from None
    return vars(ns)


def check_workflow_params(
    config: MotokoConfig,
    params: dict[str, Any],
    run_name: str,
    *,
    options_file: Path | None = None,
    argv: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """The orchestrator module's own checks (``check_params``), run before anything is
    written; returns what ``main`` receives. An error about a flag whose value came from
    the options file (not overridden on the command line) names that file. The
    executors' options are checked here too."""
    config.check_executors()
    module = config.orchestrator_module()
    check = getattr(module, "check_params", None)
    if check is None:
        return dict(params)
    try:
        return check(
            dict(params), workflow_dir=config.directory, run_name=run_name, schemas=config.schemas()
        )
    except AutopotError as exc:
        flag = (exc.field or "").split(" ")[0]
        typed = {a.split("=")[0].replace("_", "-") for a in argv if a.startswith("--")}
        if options_file is None or exc.file or not flag.startswith("--") or flag in typed:
            raise
        raise type(exc)(exc.message, file=options_file, field=exc.field) from None


def check_writable(directory: Path) -> None:
    """The workflow directory (or the folder it will be made in) and its database must be
    writable: found now, a permission problem costs one line instead of a half-started run."""
    from autopot.store.database import WorkflowPaths

    paths = WorkflowPaths(directory)
    probe = directory
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    for path, mode, what in (
        (probe, os.W_OK | os.X_OK, "cannot write the workflow directory"),
        (paths.db_dir, os.W_OK | os.X_OK, "cannot write the database directory"),
        (paths.db_file, os.R_OK | os.W_OK, "cannot read and write the database"),
    ):
        if path.exists() and not os.access(path, mode):
            raise WorkflowError(f"{what} (permission denied)", file=path, field="directory")


def _options_record(options_file: Path | None) -> dict[str, Any] | None:
    if options_file is None:
        return None
    data = options_file.read_bytes()
    return {
        "path": str(options_file.resolve()),
        "sha256": hashlib.sha256(data).hexdigest(),
        "text": data.decode("utf-8", errors="replace"),
    }


def run_orchestrator(
    motoko: str | Path,
    *,
    run_name: str | None = None,
    argv: list[str] | None = None,
    params: dict[str, Any] | None = None,
    keep_server: bool = False,
    options_file: Path | None = None,
    workflow_dir: Path | None = None,
) -> int:
    """Start (or resume) a workflow run in this process; returns the exit status.

    Every check of motoko.yaml, the templates, the flags, the options file and the input
    files runs before the lock is taken or the database opened: a refused start leaves
    the database byte-identical.
    """
    from autopot.engine.core import Engine, WorkflowStopped
    from autopot.engine.runs import TaskFailed
    from autopot.engine.workflow import Workflow
    from autopot.store.database import Store, WorkflowPaths, socket_alive
    from autopot.store.model import WorkflowRun
    from autopot.store.server import (
        remove_stale_server_files,
        server_pid,
        start_server,
        stop_server,
    )

    config = MotokoConfig.load(motoko, workflow_dir)
    config.schemas()  # every template parses before anything starts
    main = config.load_orchestrator()
    workflow_params = dict(params or {})
    if argv is not None or not params or options_file is not None:
        workflow_params.update(parse_workflow_args(config, argv or [], options_file))
    run_name = run_name or "default"
    main_params = check_workflow_params(
        config, workflow_params, run_name, options_file=options_file, argv=argv or []
    )
    options = _options_record(options_file)
    check_writable(config.directory)

    lock = OrchestratorLock(config.directory)
    try:
        lock.acquire()
    except PermissionError as exc:
        raise WorkflowError(
            f"cannot write the workflow directory: {exc.strerror}",
            file=exc.filename or config.directory,
            field="directory",
        ) from None
    paths = WorkflowPaths(config.directory)
    started_server, server = False, None
    try:
        log_handler, log_path = add_log_file(paths.logs_dir, f"orchestrator-{run_name}")
    except OSError as exc:
        lock.release()
        raise os_error(exc, "cannot create the log file") from None
    try:
        if not socket_alive(paths.socket):
            remove_stale_server_files(config.directory)
            server = start_server(config.directory)
            started_server = True
            (paths.db_dir / "owner").write_text("orchestrator\n")
        elif (paths.db_dir / "owner").exists():
            started_server = True  # left by a killed orchestrator: ours to stop at the end
        store = Store.open_zeo(paths.socket)
        workflow = Workflow(
            config.path, run_name=run_name, store=store, workflow_dir=config.directory
        )

        def begin(root: Any) -> bool:
            record = root.workflow_runs.get(run_name)
            resumed = record is not None
            if record is None:
                record = WorkflowRun(run_name, workflow_params)
                root.workflow_runs[run_name] = record
            record.state = "RUNNING"
            record.stop_request = None
            record.owner = {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": time.time(),
            }
            record.starts = [
                *record.starts,
                {
                    "time": time.time(),
                    "argv": list(argv or []),
                    "options_file": options,
                    "log": str(log_path),
                },
            ]
            record.log_event("resumed" if resumed else "started")
            return resumed

        resumed = store.transact(begin, note="workflow start")
        log.info(
            "workflow run %r %s in %s; log: %s",
            run_name,
            "resumed" if resumed else "started",
            config.directory,
            log_path,
        )
        engine = Engine(workflow)
        workflow.engine = engine
        status, message = ExitCode.OK, "finished"
        try:
            result = asyncio.run(_run_with_signals(engine, main, main_params))
            if isinstance(result, dict) and result.get("converged") is False:
                status, message = ExitCode.NOT_CONVERGED, str(result.get("why") or "not converged")
            elif isinstance(result, dict) and result.get("converged"):
                verdict = result.get("verdict")  # the validation stage's "11 of 12 properties ..."
                message = f"converged, {verdict}" if verdict else "converged"
        except WorkflowStopped as exc:
            status, message = ExitCode.STOPPED, str(exc)
        except (TaskFailed, AutopotError) as exc:
            status = getattr(exc, "exit_code", ExitCode.FAILED)
            status = (
                ExitCode.INFRASTRUCTURE if status == ExitCode.INFRASTRUCTURE else ExitCode.FAILED
            )
            message = str(exc)
        except Exception as exc:  # noqa: BLE001 - the orchestrator's own bug: record, report, exit 1
            status, message = _classify(exc, paths.db_file)
            if status == ExitCode.FAILED:
                log.error("orchestrator error:\n%s", traceback.format_exc())

        def end(root: Any) -> None:
            record = root.workflow_runs[run_name]
            record.state = _END_STATE[status]
            record.ended = time.time()
            record.log_event(f"{record.state}: {message}")

        try:
            if not store.connected:  # waiting again would only double the timeout
                raise DatabaseUnreachable("database server unreachable", file=store.description)
            store.transact(end, note="workflow end")
        except Exception as exc:  # noqa: BLE001 - the database may be what failed
            if status != ExitCode.INFRASTRUCTURE:  # else the cause is in the message already
                message = f"{message}; the end was not recorded: {_classify(exc, paths.db_file)[1]}"
            status = ExitCode.INFRASTRUCTURE
        label = message if message.startswith("converged") else _END_LABEL[status]
        (log.info if status in (ExitCode.OK, ExitCode.STOPPED) else log.error)(
            "workflow run %r %s%s (exit %d)",
            run_name,
            label,
            "" if status == ExitCode.OK else f": {message}",
            int(status),
        )
        with contextlib.suppress(Exception):
            workflow.close()
        return int(status)
    finally:
        remove_handler(log_handler)
        if started_server and not keep_server:
            pid = server_pid(config.directory) or (server.pid if server is not None else None)
            if pid is not None:
                stop_server(pid)
            (paths.db_dir / "owner").unlink(missing_ok=True)
        if server_pid(config.directory) is None:  # a killed server's files block nobody
            remove_stale_server_files(config.directory)
        lock.release()


_END_STATE = {
    ExitCode.OK: "FINISHED",
    ExitCode.FAILED: "FAILED",
    ExitCode.STOPPED: "STOPPED",
    ExitCode.NOT_CONVERGED: "NOT_CONVERGED",
    ExitCode.INFRASTRUCTURE: "FAILED",
}
_END_LABEL = {
    ExitCode.OK: "finished",
    ExitCode.FAILED: "FAILED",
    ExitCode.STOPPED: "stopped",
    ExitCode.NOT_CONVERGED: "finished without converging",
    ExitCode.INFRASTRUCTURE: "FAILED (infrastructure)",
}


def _classify(exc: BaseException, db_file: Path | None = None) -> tuple[ExitCode, str]:
    """An unexpected exception: infrastructure (database gone, disk full) or a bug."""
    if isinstance(exc, OSError):
        err = os_error(exc)
        return ExitCode(
            err.exit_code if err.exit_code == ExitCode.INFRASTRUCTURE else ExitCode.FAILED
        ), str(err)
    if type(exc).__module__.startswith(("ZEO", "ZODB", "transaction")):
        return ExitCode.INFRASTRUCTURE, str(database_error(exc, db_file))
    return ExitCode.FAILED, f"{type(exc).__name__}: {exc}"


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
