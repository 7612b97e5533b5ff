"""Tables that fit a terminal: what ``autopot runs`` prints by default.

A run has dozens of fields; a table of all of them at full precision wraps into
thousands of lines. Here: paths relative to the workflow directory, floats to 4
significant digits, arrays and long lists summarised, columns that are empty in every
row dropped, and columns beyond the width left out with a note saying how to get them
(``--columns``, or ``--format json|csv`` which stay complete).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MAX_CELL = 28  # characters of one cell before it is cut with "…"


def short(value: Any, workflow_dir: Path | None = None) -> str:
    """One cell: the value as a person scans it, not as a program stores it."""
    import numpy as np

    if value is None or value == "" or value == [] or value == {}:
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        if len(value) <= 3 and all(isinstance(v, int | float | str) for v in value):
            return ",".join(short(v, workflow_dir) for v in value)
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):  # ragged or not numbers
            return f"[{len(value)} items]"
        shape = "x".join(map(str, arr.shape))
        return f"[{shape}] {arr.min():.3g}…{arr.max():.3g}" if arr.size else "[0]"
    if isinstance(value, dict):
        return json.dumps(value, default=str, separators=(",", ":"))
    text = str(value)
    if workflow_dir is not None and os.path.isabs(text):
        try:
            text = os.path.relpath(text, workflow_dir)
        except ValueError:
            pass
        if text.startswith("../../"):  # far outside: the file name says enough
            text = os.path.basename(text)
    return text


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    width: int = 80,
    workflow_dir: Path | None = None,
    keep_empty: bool = False,
    title: str = "",
) -> tuple[str, list[str]]:
    """(the table's text, the columns left out for lack of width)."""
    cells = [[_cut(short(r.get(c), workflow_dir), MAX_CELL) for c in columns] for r in rows]
    cols = list(columns)
    if not keep_empty:  # a column empty in every row tells nothing
        keep = [i for i in range(len(cols)) if any(row[i] for row in cells)]
        cols = [cols[i] for i in keep]
        cells = [[row[i] for i in keep] for row in cells]
    heads = [c.removeprefix("q.").removeprefix("job.") for c in cols]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(heads)]
    shown: list[int] = []
    left_out: list[str] = []
    used = 0
    for i, w in enumerate(widths):
        if used + w + (2 if shown else 0) <= width or not shown:
            shown.append(i)
            used += w + (2 if len(shown) > 1 else 0)
        else:
            left_out.append(cols[i])

    def line(values: list[str]) -> str:
        return "  ".join(values[i].ljust(widths[i]) for i in shown).rstrip()

    out = [title] if title else []
    out += [line(heads), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out), left_out
