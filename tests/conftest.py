"""Fixtures shared by every test package: a live ZEO server of a workflow directory, and one
finished demo workflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def zeo_server(tmp_path: Path) -> Iterator[Path]:
    """A real ZEO server on a Unix socket (mode 0600) in ``tmp_path/wf``, stopped by PID.

    Yields the workflow directory; ``open_store(directory)`` connects to it automatically.
    """
    from autopot.store.server import start_server, stop_server

    wf = tmp_path / "wf"
    handle = start_server(wf)
    try:
        yield wf
    finally:
        stop_server(handle.pid)


@pytest.fixture(scope="session")
def finished_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A converged ``--preset cu-quick`` workflow (a private copy of the repository's
    motoko.yaml, tasks/ and workflow/); returns its motoko.yaml.

    Session-scoped because the demo takes a minute or two. The tests that share it only
    read it; tests/workflow/test_demo.py also restarts it, which by design recomputes
    nothing, so their order does not matter.
    """
    dest = tmp_path_factory.mktemp("demo")
    shutil.copy(REPO / "motoko.yaml", dest / "motoko.yaml")
    for name in ("tasks", "workflow"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autopot.cli",
            "orchestrator",
            "start",
            "-c",
            str(dest / "motoko.yaml"),
            "--preset",
            "cu-quick",
        ],
        cwd=dest,
        capture_output=True,
        text=True,
        timeout=1500,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (dest / "demo.log").write_text(proc.stdout)
    (dest / "demo.err").write_text(proc.stderr)
    return dest / "motoko.yaml"
