"""The code base keeps its shape: records only through store/, formatted, lint-clean.
(mypy runs in .ci/run and bench/layout.py: it takes longer than a test should.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from autopot.layout_rules import FORBIDDEN, forbidden_imports

REPO = Path(__file__).resolve().parents[1]


def test_records_are_read_through_the_store_only() -> None:
    assert forbidden_imports() == []


def test_the_rule_would_catch_a_violation(tmp_path: Path) -> None:
    pkg = tmp_path / "autopot" / "results"
    pkg.mkdir(parents=True)
    (pkg / "sneaky.py").write_text("def f():\n    from BTrees.IIBTree import intersection\n")
    for other in FORBIDDEN:
        (tmp_path / "autopot" / other).mkdir(exist_ok=True)
    assert forbidden_imports(tmp_path / "autopot") == [
        "autopot/results/sneaky.py:2: BTrees.IIBTree"
    ]


def test_ruff_format_and_check_are_clean() -> None:
    for args in (["format", "--check", "."], ["check", "."]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
