"""Each documented exit code, produced by the real CLI (README's table, ``autopot --help``):
0 and 2 are covered everywhere; here 1 (a run failed), 3 (stopped), 5 (disk full)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from autopot.errors import ExitCode

from .conftest import autopot, start_background


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert "Traceback" not in stderr, stderr
    return lines[-1]


def test_exit_1_a_run_failed(toy: Path) -> None:
    proc = autopot("orchestrator", "start", "-c", str(toy), "--n", "2", "--fail", "1")
    assert proc.returncode == ExitCode.FAILED == 1
    assert one_error_line(proc.stderr).endswith("(exit 1)") and "FAILED" in proc.stderr


def test_exit_3_stopped_by_sigterm(toy: Path) -> None:
    proc = start_background(toy, "--n", "2", "--sleep", "60")
    runs = toy.parent / "autopot-workflow" / "runs" / "work"
    deadline = time.time() + 60
    while (
        not (runs.exists() and len([p for p in runs.glob("*/.autopot_pid")]) == 2)
        and time.time() < deadline
    ):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.STOPPED == 3, out
    assert "stopped" in out.splitlines()[-1] and "(exit 3)" in out.splitlines()[-1]


def _tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )


def test_exit_5_disk_full(toy: Path, tmp_path: Path) -> None:
    """A workflow on a full disk: one line, exit 5, the database as it was, no server left."""
    assert autopot("orchestrator", "start", "-c", str(toy), "--n", "2").returncode == 0
    mnt = tmp_path / "small"
    if not _tmpfs(mnt, "16m"):
        pytest.skip("needs root and tmpfs mounts to fill a disk")
    try:
        wf = mnt / "wf"
        shutil.copytree(toy.parent / "autopot-workflow", wf)
        db = (wf / "db" / "autopot.fs").read_bytes()
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)  # fill the disk to the last byte
        for chunk in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
        os.close(fd)
        proc = autopot("orchestrator", "start", "-c", str(toy), "-W", str(wf), "--n", "3")
        assert proc.returncode == ExitCode.INFRASTRUCTURE == 5, proc.stdout + proc.stderr
        line = one_error_line(proc.stderr)
        assert "No space left on device" in line, proc.stderr
        assert (wf / "db" / "autopot.fs").read_bytes() == db
        assert not (wf / "db" / "zeo.pid").exists() or not _alive(wf / "db" / "zeo.pid")
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(mnt)], capture_output=True).returncode == 0:
                break
            time.sleep(0.2)


def _alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().split()[0]), 0)
    except (OSError, ValueError):
        return False
    return True
