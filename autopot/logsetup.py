"""Logging, configured once: the CLI sets the console's level; an orchestrator adds a
timestamped log file in its workflow directory, so a week-long run keeps its history.

Modules only ever call ``logging.getLogger(__name__)``; nothing else configures handlers.
A record logged with ``extra={"console": False}`` goes to the log file only (a result the
command also prints on stdout).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
CONSOLE_FORMAT = "[%(asctime)s] %(message)s"
CONSOLE_DATEFMT = "%H:%M:%S"

_console: logging.Handler | None = None


def _for_console(record: logging.LogRecord) -> bool:
    """autopot's own records; libraries (ZEO, transaction) only reach the log file, so an
    error stays one line on the terminal while the file keeps their tracebacks."""
    return record.name.startswith("autopot") and getattr(record, "console", True)


def configure(verbosity: int = 0) -> None:
    """Console handler on stderr: -1 quiet (warnings), 0 progress (info), 1 debug."""
    global _console
    logging.raiseExceptions = False  # a log write failing (disk full) is not the command failing
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    root = logging.getLogger()
    if _console is None:
        _console = logging.StreamHandler(sys.stderr)
        _console.setFormatter(logging.Formatter(CONSOLE_FORMAT, CONSOLE_DATEFMT))
        _console.addFilter(_for_console)
        root.addHandler(_console)
    _console.setLevel(level)
    root.setLevel(logging.DEBUG if verbosity > 0 else logging.INFO)


def add_log_file(directory: Path, stem: str) -> tuple[logging.Handler, Path]:
    """A new ``<directory>/<stem>-YYYYmmdd-HHMMSS.log`` receiving every record (libraries'
    too: a database failure's traceback is there, not on the terminal)."""
    directory.mkdir(parents=True, exist_ok=True)
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = directory / f"{base}.log", 1
    while path.exists():  # two starts within a second keep two files
        n += 1
        path = directory / f"{base}-{n}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    handler.previous_root_level = root.level  # type: ignore[attr-defined]  # restored on removal
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler, path


def remove_handler(handler: logging.Handler) -> None:
    """Detach and close; a log file on a full disk must not hide the error that ended the run."""
    root = logging.getLogger()
    root.removeHandler(handler)
    previous = getattr(handler, "previous_root_level", None)
    if previous is not None:  # in-process callers (the simulate API, tests) get their level back
        root.setLevel(previous)
    with contextlib.suppress(OSError):
        handler.close()
