"""Fixtures shared by every test package: a live ZEO server of a workflow directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


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
