"""The executor interface: how a prepared run directory becomes a running process.

One small interface (as ASE's Calculator or Parsl's executors): ``submit`` hands runs
over, ``cancel`` stops them, and every observation of a run's end (exit code, scheduler
state) comes back through the ``report`` callback the engine gives at construction. The
engine, not the executor, writes run states to the database, so the executor-specific
part stays small and replaceable.
"""

from __future__ import annotations

import abc
import inspect
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autopot.store.states import State

#: What every task process runs, in its run directory. A constant: no user value is ever
#: interpolated into it. The exit code is kept in a file so that an orchestrator that
#: died and restarted can still learn how a run ended.
EXIT_FILE = ".autopot_exit"
PID_FILE = ".autopot_pid"
TASK_COMMAND = [
    "/bin/sh",
    "-c",
    f'echo $$ > {PID_FILE}; sh ./run.sh; code=$?; echo "$code" > {EXIT_FILE}; exit "$code"',
]
STDOUT = "stdout.log"
STDERR = "stderr.log"


@dataclass
class RunSpec:
    """Everything an executor needs to start one run; plain data, no database objects."""

    task: str
    run_id: int
    label: str  # "sp_calc.12"
    run_dir: Path
    env: dict[str, str]
    run_params: dict[str, Any] = field(default_factory=dict)  # slurm_options, ...
    attempt: int = 1


@dataclass
class Outcome:
    """How a run ended, as the executor saw it."""

    label: str
    state: State  # FINISHED, FAILED, CANCELLED (or RUNNING/SUBMITTED for progress reports)
    exit_code: int | None = None
    cause: str = ""
    executor_id: str = ""
    retry: bool = False  # the executor asks for a resubmission (node failure, timeout)


Report = Callable[[Outcome], Awaitable[None] | None]


class Executor(abc.ABC):
    """Base class: one instance per orchestrator, shared by the task types that use it."""

    name: str = "base"
    #: How this executor's tasks reach the database: ``"socket"`` (the workflow's Unix
    #: socket: same host), ``"none"`` (no connection: the task's outcome file is ingested
    #: by the orchestrator; any host sharing the run directory), ``"tcp"`` (ZEO over TCP
    #: with mutual TLS, the address in the job environment).
    db_access: str = "socket"

    def __init__(self, report: Report, **options: Any):
        self.report = report
        self.options = options
        #: set by the engine: awaited before a queued run really starts, so nothing is
        #: launched while the database is unreachable (raises when the engine gives up)
        self.gate: Callable[[], Awaitable[None]] | None = None

    async def emit(self, outcome: Outcome) -> None:
        """Report an outcome to the engine (its callback may be sync or async)."""
        result = self.report(outcome)
        if inspect.isawaitable(result):
            await result

    async def start(self) -> None:
        """Acquire resources (connections, pollers)."""
        return None

    @abc.abstractmethod
    async def submit(self, specs: list[RunSpec]) -> list[str]:
        """Start (or queue) the runs; return one executor id per spec (pid, SLURM job id).

        Raising means nothing was submitted; the engine marks those runs FAILED with
        the error as cause.
        """

    @abc.abstractmethod
    async def cancel(self, labels: list[str]) -> None:
        """Stop runs; their outcomes are reported as CANCELLED."""

    async def adopt(self, label: str, executor_id: str, run_dir: Path) -> bool:
        """After an orchestrator restart: watch a run started by a previous orchestrator.

        Returns False when the run is gone (the engine then reads its exit file or
        applies the resubmission policy).
        """
        return False

    async def settle(self, labels: list[str], timeout: float) -> None:
        """Wait (bounded) until the processes of runs already ended in the database exit,
        so their exit codes and files are recorded before the orchestrator exits. The
        engine calls it only when it stops: an executor launches nothing after it."""
        return None

    async def close(self) -> None:
        """Release resources; running tasks are left alone unless cancelled before."""
        return None


def refuse_unknown_options(executor: str, options: dict[str, Any], known: tuple[str, ...]) -> None:
    """One line naming the first unknown option of ``executor``, with a did-you-mean."""
    if not options:
        return
    import difflib

    from autopot.errors import ExecutorError

    key = sorted(options)[0]
    near = difflib.get_close_matches(key, known, n=1)
    raise ExecutorError(
        f"unknown option {key!r} of the {executor} executor"
        + (f" (did you mean {near[0]!r}?)" if near else "")
        + f" (known: {', '.join(known)})",
        field=f"executor.{key}",
    )


def tail(path: Path, lines: int = 5, max_bytes: int = 8192) -> str:
    """Last lines of a log file, for failure causes."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def signal_of(code: int | None) -> signal.Signals | None:
    """The signal that ended a task, from the wrapper's status: negative (the wrapper itself
    was killed) or 128+N (the shell's way of saying its child, the task, died of signal N,
    as when the OOM killer sends SIGKILL)."""
    if code is None:
        return None
    number = -code if code < 0 else code - 128 if 128 < code < 128 + 65 else 0
    try:
        return signal.Signals(number) if number else None
    except ValueError:
        return None


def exit_cause(code: int) -> tuple[str, bool]:
    """(cause, retry) for a task that ended with status ``code``: a death by signal (OOM
    killer, a node's watchdog) is retried within the task manager's ``retries``; an exit
    with an error status is the task's own verdict and is not."""
    sig = signal_of(code)
    if sig is not None:
        return f"killed by signal {sig.name}", True
    return f"exit code {code}", False


def read_exit_file(run_dir: Path) -> int | None:
    """The exit code the task wrapper wrote (None: not written, or not a number)."""
    try:
        return int((run_dir / EXIT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
