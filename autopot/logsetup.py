"""Logging, configured once: the CLI sets the console's level; an orchestrator adds a
timestamped log file in its workflow directory, so a week-long run keeps its history.

Modules only ever call ``logging.getLogger(__name__)``; nothing else configures handlers.
A record logged with ``extra={"console": False}`` goes to the log file only (a result the
command also prints on stdout).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
CONSOLE_FORMAT = "[%(asctime)s] %(message)s"
CONSOLE_DATEFMT = "%H:%M:%S"

_console: logging.Handler | None = None


def configure(verbosity: int = 0) -> None:
    """Console handler on stderr: -1 quiet (warnings), 0 progress (info), 1 debug."""
    global _console
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    root = logging.getLogger("autopot")
    if _console is None:
        _console = logging.StreamHandler(sys.stderr)
        _console.setFormatter(logging.Formatter(CONSOLE_FORMAT, CONSOLE_DATEFMT))
        _console.addFilter(lambda record: getattr(record, "console", True))
        root.addHandler(_console)
        root.propagate = False
    _console.setLevel(level)
    root.setLevel(logging.DEBUG if verbosity > 0 else logging.INFO)


def add_log_file(directory: Path, stem: str) -> tuple[logging.Handler, Path]:
    """A new ``<directory>/<stem>-YYYYmmdd-HHMMSS.log`` receiving every autopot record."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger("autopot")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler, path


def remove_handler(handler: logging.Handler) -> None:
    logging.getLogger("autopot").removeHandler(handler)
    handler.close()
