"""Atomic file writes: the one helper every package uses (cfg, mtp, active sets, reports,
archives). A reader sees the old file or the new one, never half of one, and the new
file gets the mode the user's umask asks for (``mkstemp`` alone would make it 0600, and
a research group could not read each other's potentials).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but rare)
    os.umask(mask)
    return mask


def default_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file."""
    return 0o666 & ~umask()


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name; on success
    it gets the umask's mode and replaces ``path``, on failure it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent or ".")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` all or nothing."""
    atomic_write_bytes(path, text.encode("utf-8"))
