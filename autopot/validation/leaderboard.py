"""Benchmark several models on one suite against one reference; publish a leaderboard.

Every simulation is a recorded run of one store (cached per model and for the
reference), so adding a model to a benchmark computes only that model. The ranking:
most properties within tolerance first, then the smaller mean relative error.
``leaderboard.json`` holds the data in rank order; ``leaderboard.html`` is one
self-contained page (inline CSS and JavaScript for sorting, figures as data URIs).
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autopot.errors import AutopotError
from autopot.validation import core
from autopot.validation.suite import Suite, load_suite


def benchmark(
    models: Sequence[str],
    *,
    reference: Any = "emt",
    suite: str | Path | Suite | None = None,
    atom_types: str | None = None,
    temperature_K: float = 300.0,
    store: str | Path | None = None,
    workflow_dir: str | Path | None = None,
    out_dir: str | Path = ".",
) -> dict[str, Any]:
    """Validate each model of ``models`` (names as ``--calculator`` takes them) against
    ``reference``; write and return the leaderboard."""
    from autopot.locate import resolve_workflow_dir
    from autopot.reference.calculators import resolve_spec
    from autopot.reference.registry import lookup
    from autopot.simulate import tasks

    t0 = time.time()
    if not models:
        raise AutopotError("give at least one model", field="models")
    if len(set(models)) != len(models) or core.REFERENCE in models:
        raise AutopotError("model names must be distinct and not 'reference'", field="models")
    wf = resolve_workflow_dir(workflow_dir) if workflow_dir is not None else None
    specs = {name: resolve_spec(name, workflow_dir=wf) for name in models}
    ref = resolve_spec(reference, workflow_dir=wf)
    if atom_types is None:
        atom_types = next(
            (str(s["atom_types"]) for s in specs.values() if s.get("atom_types")), None
        )
    if atom_types is None:
        raise AutopotError("cannot tell the species; pass --atom-types", field="atom_types")
    the_suite = suite if isinstance(suite, Suite) else load_suite(suite, atom_types=atom_types)
    directory = Path(store).resolve() if store is not None else tasks.default_workflow_dir()
    plan = core.make_plan(
        the_suite,
        the_suite.bulk(atom_types),
        {**specs, core.REFERENCE: ref},
        training_temperature_K=temperature_K,
    )
    runner = core.ApiRunner(directory)
    results = runner.run(plan, plan.requests)
    held = runner.run(plan, plan.heldout) if plan.heldout else []
    frames = core.heldout_frames(
        held, the_suite.heldout["equilibration"], the_suite.heldout["interval"]
    )
    heldout = (
        {name: core.heldout_errors(spec, frames) for name, spec in specs.items()} if frames else {}
    )
    per_model = core.assemble(plan, plan.requests, results, list(models), heldout, started=t0)
    entries = []
    for name in models:
        m = per_model[name]
        entry = lookup(name)
        entries.append(
            {
                "name": name,
                "calculator": specs[name],
                "meta": dict(entry.meta) if entry is not None else {},
                "properties": m["properties"],
                "within_tolerance": m["within_tolerance"],
                "missed": m["missed"],
                "mean_rel_err": m["mean_rel_err"],
                "values": {
                    r["property"]: {k: r[k] for k in ("value", "reference", "rel_err", "pass")}
                    for r in m["rows"]
                },
                "runs": m["runs"],
            }
        )
    entries.sort(key=rank_key)
    for i, e in enumerate(entries, 1):
        e["rank"] = i
    reference_runs = [
        o for r, o in zip(plan.requests, results, strict=True) if r.side == core.REFERENCE
    ] + held
    board = {
        "reference": reference if isinstance(reference, str) else json.dumps(reference),
        "reference_calculator": ref,
        "atom_types": atom_types,
        "store": str(directory),
        "suite": the_suite.to_dict(),
        "properties": [
            {"name": p.name, "unit": p.unit, "tolerance": p.tolerance_text()}
            for p in the_suite.properties
        ],
        "models": entries,
        "reference_cached": sum(o.cached for o in reference_runs),
        "reference_total": len(reference_runs),
        "heldout_frames": len(frames),
        "wall_s": round(time.time() - t0, 2),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    board["files"] = {"json": str(out / "leaderboard.json"), "html": str(out / "leaderboard.html")}
    write(board, out)
    return board


def rank_key(entry: dict[str, Any]) -> tuple[int, float, str]:
    err = entry.get("mean_rel_err")
    return (-int(entry["within_tolerance"]), err if err is not None else math.inf, entry["name"])


def write(board: dict[str, Any], out: Path) -> None:
    from autopot.atomic import atomic_write_text
    from autopot.validation.api import _jsonable

    atomic_write_text(out / "leaderboard.json", json.dumps(_jsonable(board), indent=1) + "\n")
    figure = out / "leaderboard_errors.png"
    plot_errors(board, figure)
    atomic_write_text(out / "leaderboard.html", render_html(board, figure))


def plot_errors(board: dict[str, Any], path: Path) -> None:
    """Relative error per property, one bar per model (log scale: 0.1 % and 50 % both show)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    props = [p["name"] for p in board["properties"]]
    models = board["models"]
    fig = Figure(figsize=(max(6.0, 0.7 * len(props) + 2), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(props))
    for i, m in enumerate(models):
        values = [max((m["values"].get(p) or {}).get("rel_err") or 0.0, 1e-5) * 100 for p in props]
        ax.bar(x + i * width, values, width, label=f"{m['rank']}. {m['name']}")
    ax.axhline(10, color="k", lw=0.8, ls="--", label="10 %")
    ax.set_yscale("log")
    ax.set_xticks(x + width * (len(models) - 1) / 2)
    ax.set_xticklabels(props, rotation=45, ha="right")
    ax.set_ylabel("relative error vs reference (%)")
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=100, format="png")


_JS = """
function sortBy(col, numeric) {
  const t = document.getElementById('leaderboard'), b = t.tBodies[0];
  const rows = Array.from(b.rows), asc = t.dataset.col == col ? t.dataset.asc != 'true' : true;
  rows.sort((r, s) => {
    let x = r.cells[col].dataset.v ?? r.cells[col].textContent, y = s.cells[col].dataset.v ?? s.cells[col].textContent;
    if (numeric) { x = x === '' ? Infinity : +x; y = y === '' ? Infinity : +y; }
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
  });
  rows.forEach(r => b.appendChild(r));
  t.dataset.col = col; t.dataset.asc = asc;
}
"""
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; } th { background: #eee; cursor: pointer; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; } td.num { text-align: right; }
td.fail { background: #fdd; } td.pass { background: #dfd; } img { max-width: 100%; }
.meta { color: #555; font-size: 0.9em; }
"""


def render_html(board: dict[str, Any], figure: Path | None = None) -> str:
    """One page, nothing external: sortable table (click a header), figures inline."""
    esc = html.escape
    props = board["properties"]
    head = ["rank", "model", "within tolerance", "mean rel. error"] + [
        f"{p['name']} ({p['unit']})" for p in props
    ]
    numeric = [True, False, True, True] + [True] * len(props)
    ths = "".join(
        f'<th onclick="sortBy({i}, {str(n).lower()})">{esc(h)}</th>'
        for i, (h, n) in enumerate(zip(head, numeric, strict=True))
    )
    body = []
    for m in board["models"]:
        err = m["mean_rel_err"]
        cells = [
            f"<td class=num data-v={m['rank']}>{m['rank']}</td>",
            f"<td>{esc(m['name'])}</td>",
            f"<td class=num data-v={m['within_tolerance']}>{m['within_tolerance']} of {m['properties']}</td>",
            f"<td class=num data-v='{'' if err is None else err}'>{'' if err is None else f'{err * 100:.2f} %'}</td>",
        ]
        for p in props:
            v = m["values"].get(p["name"]) or {}
            value = v.get("value")
            cls = {True: "pass", False: "fail", None: "num"}[v.get("pass")]
            cells.append(
                f"<td class='num {cls}' data-v='{'' if value is None else value}'>"
                f"{'' if value is None else f'{value:.4g}'}</td>"
            )
        body.append(f"<tr data-model='{esc(m['name'])}'>" + "".join(cells) + "</tr>")
    refs = [_ref(board, p["name"]) for p in props]
    ref_row = "".join(f"<td class=num>{'' if r is None else f'{r:.4g}'}</td>" for r in refs)
    tol_row = "".join(f"<td>{esc(p['tolerance'])}</td>" for p in props)
    parts = [
        "<!DOCTYPE html>",
        "<html lang=en><head><meta charset=utf-8><title>autopot leaderboard</title>",
        f"<style>{_CSS}</style><script>{_JS}</script></head><body>",
        "<h1>Leaderboard</h1>",
        f"<p class=meta>Reference {esc(str(board['reference']))} · suite {esc(board['suite']['source'])}"
        f" · species {esc(str(board['atom_types']))} · {board['heldout_frames']} held-out frames"
        f" · store {esc(board['store'])}</p>",
        f"<table id=leaderboard><thead><tr>{ths}</tr></thead><tbody>",
        *body,
        "</tbody><tfoot>",
        f"<tr><td></td><td>reference</td><td></td><td></td>{ref_row}</tr>",
        f"<tr><td></td><td>tolerance</td><td></td><td></td>{tol_row}</tr>",
        "</tfoot></table>",
    ]
    if figure is not None and figure.is_file():
        data = base64.b64encode(figure.read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img alt="relative errors" src="data:image/png;base64,{data}"></figure>'
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _ref(board: dict[str, Any], prop: str) -> float | None:
    for m in board["models"]:
        value = (m["values"].get(prop) or {}).get("reference")
        if value is not None:
            return float(value)
    return None
