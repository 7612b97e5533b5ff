"""Helpers of the archive/export/report tests: the CLI as a process, the toy workflow.

The finished demo they read (``finished_demo``) is the session fixture of tests/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def autopot(*args: str, cwd: Path | None = None, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: a separate process, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "autopot.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


TOY = REPO / "tests" / "engine" / "toy"


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A private copy of the engine tests' toy workflow (work tasks, then collect)."""
    dest = tmp_path / "toy"
    shutil.copytree(TOY, dest, ignore=shutil.ignore_patterns("autopot-workflow", "__pycache__"))
    return dest / "motoko.yaml"


def start_background(motoko: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "autopot.cli", "orchestrator", "start", "-c", str(motoko), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
