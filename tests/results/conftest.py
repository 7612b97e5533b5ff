"""One finished cu-quick demo workflow shared by the archive/export/report tests.

Session-scoped: the demo takes a couple of minutes, and these tests only read it (the
archive test archives it; nothing here writes to the workflow directory).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def autopot(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: a separate process, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "autopot.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture(scope="session")
def finished_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A converged ``--preset cu-quick`` workflow; returns its motoko.yaml."""
    dest = tmp_path_factory.mktemp("demo")
    shutil.copy(REPO / "motoko.yaml", dest / "motoko.yaml")
    for name in ("tasks", "workflow"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    proc = autopot("orchestrator", "start", "-c", str(dest / "motoko.yaml"), "--preset", "cu-quick",
                   cwd=dest, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dest / "motoko.yaml"


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
