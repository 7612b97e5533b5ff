"""Fixtures: a template directory of our own, a live ZEO server stopped by PID."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A private copy of tasks/sp_calc (tests may edit it)."""
    dest = tmp_path / "tasks" / "sp_calc"
    shutil.copytree(REPO / "tasks" / "sp_calc", dest)
    return dest


@pytest.fixture
def zeo_server(tmp_path: Path) -> Iterator[Path]:
    """A real ZEO server on a Unix socket in tmp_path/wf; yields the workflow directory."""
    from autopot.store.server import start_server, stop_server

    wf = tmp_path / "wf"
    handle = start_server(wf)
    try:
        yield wf
    finally:
        stop_server(handle.pid)
