"""Fixtures for engine tests: a private copy of the toy workflow and a CLI runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TOY = Path(__file__).parent / "toy"


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A copy of the toy workflow in tmp_path; returns its motoko.yaml."""
    dest = tmp_path / "toy"
    shutil.copytree(TOY, dest, ignore=shutil.ignore_patterns("autopot-workflow", "__pycache__"))
    return dest / "motoko.yaml"


def autopot(
    *args: str,
    cwd: Path | None = None,
    timeout: float = 300,
    check: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: a separate process, output captured."""
    proc = subprocess.run(
        [sys.executable, "-m", "autopot.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"autopot {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def start_background(motoko: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "autopot.cli", "orchestrator", "start", "-c", str(motoko), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def status(motoko: Path) -> dict:
    proc = autopot("orchestrator", "status", "-c", str(motoko), "--json", check=True)
    return json.loads(proc.stdout)
