"""Which package may import what: the records layer's boundary, checked by a test and by
bench/layout.py.

Packages that read or present records (the CLI's commands, results, task code, the
AutoPot stages, simulations) go through :mod:`autopot.store`'s façade
(:class:`~autopot.store.workflow_records.WorkflowRecords`) and never import the object
model or the database libraries themselves; that keeps one place to change when the
storage changes.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent

#: package (relative to autopot/) -> module prefixes it must not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    pkg: ("autopot.store.model", "ZODB", "ZEO", "BTrees", "persistent", "transaction")
    for pkg in ("commands", "results", "tasklib", "activelearning", "simulate", "validation")
}


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in a Python file, lazy ones inside functions too."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def forbidden_imports(root: Path = PACKAGE) -> list[str]:
    """``path:line: module`` for every import that crosses the boundary."""
    out = []
    for pkg, banned in FORBIDDEN.items():
        for path in sorted((root / pkg).rglob("*.py")):
            for line, module in imports(path):
                if any(module == b or module.startswith(b + ".") for b in banned):
                    out.append(f"{path.relative_to(root.parent)}:{line}: {module}")
    return out
