"""Output of a running orchestrator: timestamped progress on stderr, a "waiting on" line at
least every interval while runs are outstanding, a log file per start, --quiet."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import autopot


def test_progress_log_file_and_quiet(toy: Path) -> None:
    proc = autopot(
        "orchestrator",
        "start",
        "-c",
        str(toy),
        "--n",
        "2",
        "--sleep",
        "2.5",
        env={"AUTOPOT_PROGRESS_S": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert all(re.match(r"\[\d\d:\d\d:\d\d\] ", ln) for ln in lines), lines
    assert any("submitted work.1, work.2" in ln for ln in lines), lines
    waiting = [ln for ln in lines if "waiting on 2 runs: work 2 running" in ln]
    assert len(waiting) >= 1, lines
    logs = sorted((toy.parent / "autopot-workflow" / "logs").glob("orchestrator-default-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert re.search(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO +autopot\.engine: submitted", text, re.M
    ), text
    assert "finished (exit 0)" in text
    quiet = autopot("-q", "orchestrator", "start", "-c", str(toy), "--n", "2")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert (
        len(list((toy.parent / "autopot-workflow" / "logs").glob("orchestrator-default-*.log")))
        == 2
    )
