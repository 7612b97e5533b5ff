"""The validation table in the AutoPot paper's Table 2 form, as text and HTML."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

HEADERS = ("property", "unit", "MTP", "reference", "rel. error", "tolerance", "pass")


def _num(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}"


def cells(row: dict[str, Any]) -> list[str]:
    passed = {True: "yes", False: "NO", None: "n/a"}[row.get("pass")]
    rel = row.get("rel_err")
    return [
        str(row["property"]),
        str(row.get("unit") or ""),
        _num(row.get("value")),
        _num(row.get("reference")),
        "" if rel is None else f"{rel * 100:.1f} %",
        str(row.get("tolerance") or ""),
        passed,
    ]


def text_lines(rows: Sequence[dict[str, Any]], value_header: str = "MTP") -> list[str]:
    """Aligned text (80 columns for the shipped suites); numbers right-aligned."""
    headers = list(HEADERS)
    headers[2] = value_header
    table = [headers] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    right = {2, 3, 4}
    return [
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in table
    ]


def html_table(rows: Sequence[dict[str, Any]], value_header: str = "MTP") -> str:
    headers = list(HEADERS)
    headers[2] = value_header
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cls = {True: "pass", False: "fail", None: "na"}[row.get("pass")]
        tds = "".join(
            f"<td{' class=num' if i in (2, 3, 4) else ''}>{html.escape(c)}</td>"
            for i, c in enumerate(cells(row))
        )
        body.append(f"<tr class={cls}>{tds}</tr>")
    return f"<table class=validation><tr>{head}</tr>\n" + "\n".join(body) + "</table>"
