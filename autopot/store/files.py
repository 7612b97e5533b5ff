"""File manifests (sha256 + size) of run directories, and the run-directory marker file."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RUN_MARKER = "autopot_run.json"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def iter_files(directory: str | Path, skip_dirs: frozenset[str] = frozenset()) -> Iterator[Path]:
    """Regular files below ``directory`` in a stable order; symlinks are not followed."""
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def manifest(directory: str | Path) -> dict[str, tuple[str, int]]:
    """``{relative path: (sha256, size)}`` for every regular file below ``directory``."""
    directory = Path(directory)
    return {
        str(path.relative_to(directory)): (sha256_file(path), path.stat().st_size)
        for path in iter_files(directory, frozenset({"__pycache__"}))
    }


def write_marker(run_dir: Path, data: dict[str, Any]) -> None:
    """Tell the task process which run it is and how to reach the database."""
    tmp = run_dir / (RUN_MARKER + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, run_dir / RUN_MARKER)


def read_marker(run_dir: Path) -> dict[str, Any]:
    from autopot.errors import StoreError

    path = run_dir / RUN_MARKER
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StoreError("not an autopot run directory (marker file missing)", file=path) from None
    except json.JSONDecodeError as exc:
        raise StoreError(f"malformed run marker: {exc}", file=path) from None
