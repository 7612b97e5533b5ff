"""Fixtures: a template directory of our own (``zeo_server`` is in tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A private copy of tasks/sp_calc (tests may edit it)."""
    dest = tmp_path / "tasks" / "sp_calc"
    shutil.copytree(REPO / "tasks" / "sp_calc", dest)
    return dest
