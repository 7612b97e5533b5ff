"""Errors rendered as one line, and the exit codes the CLI maps them to.

Users read these on a login node: the message names the file and the field so they can
fix their input without reading a traceback. The exit code says which kind of failure it
was, so a batch script can tell "fix your input" from "the cluster's disk is full".
"""

from __future__ import annotations

import enum
from pathlib import Path


class ExitCode(enum.IntEnum):
    """Exit statuses of every autopot command (README, ``autopot --help``)."""

    OK = 0  # finished; a workflow converged (or had no convergence criterion)
    FAILED = 1  # a run or a calculation failed
    BAD_INPUT = 2  # a flag, file or parameter is wrong: nothing was changed
    STOPPED = 3  # stopped by the user (orchestrator stop, SIGTERM, Ctrl-C)
    NOT_CONVERGED = 4  # the workflow finished its iterations without converging
    INFRASTRUCTURE = 5  # database unreachable, disk full, I/O error
    DAMAGED = 6  # stored data is damaged or tampered with (database file, archive)


EXIT_CODES_HELP = (
    "Exit codes: 0 finished (converged), 1 a run failed, 2 bad input (nothing changed), "
    "3 stopped by the user, 4 finished without converging, "
    "5 infrastructure failure (database unreachable, disk full), 6 damaged data (database file, archive)."
)


class AutopotError(Exception):
    """A user-facing error: ``<file>: <field>: <message>`` on one line (bad input, exit 2)."""

    exit_code: ExitCode = ExitCode.BAD_INPUT

    def __init__(self, message: str, *, file: str | Path | None = None, field: str | None = None):
        self.file = str(file) if file is not None else None
        self.field = field
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        text = " ".join(self.message.split())
        return ": ".join([*parts, text])


class SchemaError(AutopotError):
    """A bd.yaml is malformed or a parameter value does not fit its declared type."""


class StoreError(AutopotError):
    """The database cannot be opened, is corrupted, locked, or refuses a write."""


class DatabaseUnreachable(StoreError):
    """The database server did not answer within the reconnect timeout: an infrastructure
    failure (exit 5), not bad input; finished results stay in their run directories."""

    exit_code = ExitCode.INFRASTRUCTURE


class QueryError(AutopotError):
    """A ``--where`` constraint cannot be parsed."""


class WorkflowError(AutopotError):
    """motoko.yaml, a task manager or the orchestrator module is wrong."""


class ExecutorError(AutopotError):
    """A task could not be submitted, or its executor failed."""


class MTPError(AutopotError):
    """A .cfg/.mtp file, an atom-type mapping or an MTP backend is wrong."""


class CalculationError(AutopotError):
    """The input was fine but the calculation failed (SCF not converged, mlp crashed):
    exit 1, like a failed run, not 2 ("fix your input")."""

    exit_code = ExitCode.FAILED


class DamagedDataError(AutopotError):
    """Stored data cannot be trusted: a damaged database file, an archive that fails its
    checks. Nothing was changed; restore from a good copy."""

    exit_code = ExitCode.DAMAGED


class InfrastructureError(AutopotError):
    """The machine failed the workflow (database unreachable, disk full), not its input."""

    exit_code = ExitCode.INFRASTRUCTURE


def os_error(exc: OSError, what: str = "") -> AutopotError:
    """An OSError as a one-line error naming the file: a full disk or an I/O error is an
    infrastructure failure, a missing or forbidden path is the user's input."""
    import errno

    infra = {errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.ENOMEM, errno.EMFILE, errno.ENFILE}
    message = f"{what}{': ' if what else ''}{exc.strerror or exc}"
    cls = InfrastructureError if exc.errno in infra else AutopotError
    return cls(message, file=exc.filename)


def database_error(exc: BaseException, file: str | Path | None = None) -> InfrastructureError:
    """A ZODB/ZEO failure as one line: the server's OSError (disk full, permission) is
    unwrapped from ZEO's ``ServerException(class name, args)`` so the user reads the cause;
    ``file`` (the database file the server writes) is named, as ZEO's message does not."""
    args = tuple(getattr(exc, "args", ()))
    if len(args) == 1 and isinstance(args[0], tuple):
        args = args[0]
    if type(exc).__name__ == "ServerException" and len(args) == 2 and isinstance(args[0], str):
        name, detail = args
        if isinstance(detail, tuple) and len(detail) >= 2 and isinstance(detail[0], int):
            return InfrastructureError(
                f"server failed to write: {detail[1]} (errno {detail[0]})",
                file=file,
                field="database",
            )
        return InfrastructureError(
            f"server error {name.rsplit('.', 1)[-1]}: {detail}", file=file, field="database"
        )
    return InfrastructureError(f"{type(exc).__name__}: {exc}", file=file, field="database")
