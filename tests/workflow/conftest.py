"""A private copy of the repository's AutoPot workflow (motoko.yaml, tasks/, workflow/)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def autopot_wf(tmp_path: Path) -> Path:
    dest = tmp_path / "wf"
    dest.mkdir()
    shutil.copy(REPO / "motoko.yaml", dest / "motoko.yaml")
    for name in ("tasks", "workflow"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest / "motoko.yaml"


def start(motoko: Path, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autopot.cli", "orchestrator", "start", "-c", str(motoko), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=motoko.parent,
        env={**os.environ, "COLUMNS": "200"},
    )
