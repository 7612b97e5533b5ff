"""The code base's shape, measured: the records boundary, types, formatting, and the one
atomic writer. Ends with one JSON line:
{"forbidden_imports": 0, "mypy_errors": 0, "ruff_format_clean": true, "atomic_write_helpers": 1}
"""

from __future__ import annotations

import ast
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autopot.layout_rules import forbidden_imports  # noqa: E402

log = logging.getLogger("bench.layout")


def mypy_errors() -> int:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True)
    found = re.search(r"Found (\d+) errors?", proc.stdout)
    if found:
        return int(found.group(1))
    if "Success" in proc.stdout:
        return 0
    raise SystemExit(f"mypy did not run: {proc.stdout[-500:]}{proc.stderr[-500:]}")


def ruff_format_clean() -> bool:
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    return proc.returncode == 0


def atomic_write_helpers() -> list[str]:
    """Functions that write a file through a temporary name and os.replace: should be one
    place (autopot/atomic.py)."""
    out = []
    for path in sorted((REPO / "autopot").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                calls = {ast.unparse(c.func) for c in ast.walk(node) if isinstance(c, ast.Call)}
                if "os.replace" in calls and any("mkstemp" in c for c in calls):
                    out.append(f"{path.relative_to(REPO)}:{node.name}")
    return out


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    forbidden = forbidden_imports()
    for line in forbidden:
        log.info("forbidden import: %s", line)
    helpers = atomic_write_helpers()
    log.info("atomic writers: %s", ", ".join(helpers))
    print(
        json.dumps(
            {
                "forbidden_imports": len(forbidden),
                "mypy_errors": mypy_errors(),
                "ruff_format_clean": ruff_format_clean(),
                "atomic_write_helpers": len(helpers),
            }
        )
    )


if __name__ == "__main__":
    main()
