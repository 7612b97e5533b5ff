"""A workflow run's report: figures, summary tables, and optionally one HTML page.

What a user looks at after (or during) an AutoPot run: how the training set grew
(the paper's Figure 4), the training errors per iteration (its Table 1), parity plots of
the final potential, the extrapolation grades the selections saw, and where the wall time
went. Everything is read from the records (:mod:`autopot.results.source`) and the run
directories of *this copy* of the workflow directory, so a report can be built from an
archive extracted elsewhere. Every file goes into ``out_dir``; nothing is written into the
workflow directory.

matplotlib is imported inside the plotting functions (``import autopot.results.report``
stays cheap for the CLI), and figures are drawn on ``matplotlib.figure.Figure`` with the
Agg canvas directly instead of through pyplot, so building a report never switches the
backend of the calling process (a notebook keeps its inline plots) and needs no display.
"""

from __future__ import annotations

import base64
import html as _html
import json
import math
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autopot.atomic import atomic_write_text
from autopot.results.source import WorkflowRecords, train_context
from autopot.tasklib import POTENTIAL, TRAINING_SET

GPA_PER_EV_A3 = 160.21766208  # same factor as autopot.mtp.backend (not imported: numpy-free import)
DPI = 110
TASK_ORDER = ("sp_calc", "select", "md_select", "train")
#: the validation figures (autopot.validation.figures) come last; skipped without a validation
FIGURES = (
    "ts_size",
    "errors",
    "parity",
    "grades",
    "walltime",
    "val_eos",
    "val_phonon",
    "val_neb",
    "val_parity",
    "val_iter",
)
GRADE_CLIP = 1e-3  # grades are >= 0; log-scaled histograms need a positive floor
MAX_PARITY_POINTS = 20000  # plotted per panel; errors use every point
STAGE_COLOURS = {"calculate_ts": "tab:blue", "select": "tab:orange", "md_select": "tab:green"}

# (key, header, format) of each table, shared by text(), the HTML page and the column order
Column = tuple[str, str, str]
COLUMNS: dict[str, list[Column]] = {
    "iterations": [
        ("train", "train run", "s"),
        ("state", "state", "s"),
        ("label", "label", "s"),
        ("threshold", "threshold", "g"),
        ("ts_added", "added", "d"),
        ("ts_size", "ts size", "d"),
        ("energy_rmse_meV_per_atom", "E RMSE meV/at", ".3f"),
        ("energy_mae_meV_per_atom", "E MAE meV/at", ".3f"),
        ("forces_rmse_meV_per_A", "F RMSE meV/A", ".2f"),
        ("forces_mae_meV_per_A", "F MAE meV/A", ".2f"),
        ("stress_rmse_GPa", "S RMSE GPa", ".4f"),
        ("stress_mae_GPa", "S MAE GPa", ".4f"),
        ("fit_s", "fit s", ".1f"),
        ("wall_s", "wall s", ".1f"),
    ],
    "selection": [
        ("run", "run", "s"),
        ("state", "state", "s"),
        ("potential", "potential", "s"),
        ("iteration", "iter", "d"),
        ("threshold", "threshold", "g"),
        ("gamma_max", "gamma_max", "g"),
        ("n_candidates", "candidates", "d"),
        ("n_above", "above", "d"),
        ("n_collected", "collected", "d"),
        ("md_steps", "MD steps", "d"),
        ("n_selected", "selected", "d"),
        ("max_grade", "max grade", ".3g"),
    ],
    "tasks": [
        ("task", "task", "s"),
        ("runs", "runs", "d"),
        ("FINISHED", "finished", "d"),
        ("FAILED", "failed", "d"),
        ("CANCELLED", "cancelled", "d"),
        ("active", "active", "d"),
        ("total_wall_s", "total wall s", ".1f"),
        ("median_wall_s", "median wall s", ".2f"),
        ("max_wall_s", "max wall s", ".2f"),
    ],
    "parity": [
        ("quantity", "quantity", "s"),
        ("unit", "unit", "s"),
        ("n", "n", "d"),
        ("rmse", "RMSE", ".4g"),
        ("mae", "MAE", ".4g"),
        ("max", "max", ".4g"),
        ("recorded_rmse", "recorded RMSE", ".4g"),
    ],
    "validation": [
        ("property", "property", "s"),
        ("unit", "unit", "s"),
        ("value", "MTP", ".4g"),
        ("reference", "reference", ".4g"),
        ("rel_err_pct", "rel. error %", ".2f"),
        ("tolerance", "tolerance", "s"),
        ("pass", "pass", "s"),
    ],
}
TABLE_TITLES = {
    "iterations": "Iterations (one row per train run)",
    "selection": "Selection (select and md_select runs)",
    "tasks": "Tasks (wall time of FINISHED runs)",
    "parity": "Parity of the last potential on its training set",
    "validation": "Validation against the reference (autopot.validation; the paper's Table 2)",
}


@dataclass
class Report:
    """What :func:`build_report` wrote, and the plain data it was drawn from."""

    out_dir: Path
    summary_json: Path
    figures: dict[str, Path] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    workflow: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    html: Path | None = None
    generated: str = ""

    def text(self) -> str:
        """The summary as plain aligned text (what ``autopot report`` prints)."""
        lines = [_headline(self.workflow)]
        lines += [f"  {k}: {v}" for k, v in _workflow_facts(self.workflow)]
        for name, title in TABLE_TITLES.items():
            rows = self.tables.get(name) or []
            lines += ["", title]
            lines += (
                [f"  {line}" for line in format_table(rows, COLUMNS[name])]
                if rows
                else ["  (none)"]
            )
        lines += ["", f"Figures in {self.out_dir}"]
        lines += [f"  {name:<9} {path.name}" for name, path in self.figures.items()]
        lines += [f"  {name:<9} skipped: {why}" for name, why in self.skipped.items()]
        if self.html is not None:
            lines.append(f"  html      {self.html.name}")
        return "\n".join(lines) + "\n"


def build_report(
    records: WorkflowRecords, out_dir: Path, *, html: bool = False, parity: bool = True
) -> Report:
    """Tables, figures, ``summary.json`` (and ``report.html``) of one workflow run in ``out_dir``.

    Never fails because data is missing: a figure without data is skipped, with the reason
    in ``Report.skipped``, so a report of a failed or empty workflow still says what it can.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trains = records.runs("train")
    report = Report(
        out_dir=out_dir,
        summary_json=out_dir / "summary.json",
        generated=time.strftime("%Y-%m-%d %H:%M:%S %z"),
    )
    report.workflow = _workflow_info(records, trains)
    report.tables["iterations"] = _iterations_table(trains)
    report.tables["selection"], grade_sets = _selection_table(records, trains)
    report.tables["tasks"], walls = _tasks_table(records)
    report.tables["parity"] = []

    plots: dict[str, Callable[[Path], str | None]] = {
        "ts_size": lambda p: _plot_ts_size(report.tables["iterations"], records.run_name, p),
        "errors": lambda p: _plot_errors(report.tables["iterations"], records.run_name, p),
        "parity": lambda p: _parity(records, report, p) if parity else "disabled (--no-parity)",
        "grades": lambda p: _plot_grades(grade_sets, p),
        "walltime": lambda p: _plot_walltime(walls, p),
    }
    from autopot.validation import figures as validation_figures

    validation = validation_figures.load(records)
    report.tables["validation"] = validation_figures.table_rows(validation)
    plots.update(validation_figures.plots(records, validation))
    for name, plot in plots.items():
        path = out_dir / f"{name}.png"
        try:
            why = plot(path)
        except Exception as exc:  # noqa: BLE001 - one broken figure must not lose the others
            why = f"failed: {type(exc).__name__}: {exc}"
        if why is None and path.is_file():
            report.figures[name] = path
        else:
            report.skipped[name] = why or "no figure written"
            path.unlink(missing_ok=True)  # a stale figure of an earlier report would mislead

    if html:
        report.html = out_dir / "report.html"
        atomic_write_text(report.html, render_html(report))
    atomic_write_text(
        report.summary_json,
        json.dumps(
            _jsonable(
                {
                    "autopot_version": _version(),
                    "generated": report.generated,
                    "workflow": report.workflow,
                    "tables": report.tables,
                    "figures": {k: v.name for k, v in report.figures.items()},
                    "skipped": report.skipped,
                    "html": report.html.name if report.html else None,
                }
            ),
            indent=1,
            allow_nan=False,
        )
        + "\n",
    )
    return report


# ------------------------------------------------------------------------------ data


def _num(value: Any, scale: float = 1.0) -> float | None:
    """A finite float (scaled), else None: NaN means "not measured" in the tables."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value) * scale
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _int(value: Any) -> int | None:
    return None if value is None or isinstance(value, bool) else int(value)


def stage_label(context: dict[str, Any]) -> str:
    """Short tick label of a train run: ``calc_ts``, ``sel 10``, ``sel 10 #2``, ``md 3``."""
    stage = str(context.get("stage", "?"))
    iteration = context.get("iteration")
    if stage == "calculate_ts":
        return "calc_ts"
    if stage == "select":
        threshold = context.get("threshold")
        label = f"sel {threshold:g}" if isinstance(threshold, int | float) else "sel"
        return label + (f" #{iteration}" if isinstance(iteration, int) and iteration > 1 else "")
    if stage == "md_select":
        return f"md {iteration}"
    return stage


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _workflow_info(records: WorkflowRecords, trains: list[Any]) -> dict[str, Any]:
    """Facts of the workflow run; file locations from the last train run's *stored*
    relative directory (the summary's absolute paths point into the original directory)."""
    summary = records.summary
    settings = summary.get("settings") or {}
    record = records.workflow_record()
    finished = [r for r in trains if r.state == "FINISHED"]
    last = finished[-1] if finished else None
    info: dict[str, Any] = {
        "run_name": records.run_name,
        "directory": str(records.directory),
        "state": getattr(record, "state", None),
        "converged": summary.get("converged"),
        "reference_calls": summary.get("reference_calls"),
        "wall_s": summary.get("wall_s"),
        "preset": settings.get("preset"),
        "atom_types": None,
        "train_runs": len(trains),
        "last_train": last.label if last is not None else None,
        "potential": None,
        "training_set": None,
    }
    try:
        info["atom_types"] = records.atom_types(last)
    except Exception:  # noqa: BLE001 - not an MTP workflow (or no run says): leave it out
        pass
    if last is not None and last.directory:
        run_dir = records.run_dir(last)
        info["potential"] = _relative(run_dir / POTENTIAL, records.directory)
        info["training_set"] = _relative(run_dir / TRAINING_SET, records.directory)
    if trains and trains[-1].state != "FINISHED":
        info["latest_train"] = f"{trains[-1].label} {trains[-1].state}"
    return info


def _iterations_table(trains: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for run in trains:
        ctx = train_context(run)
        q = run.quantities
        rows.append(
            {
                "train": run.label,
                "state": run.state,
                "label": stage_label(ctx),
                "stage": ctx.get("stage"),
                "iteration": ctx.get("iteration"),
                "threshold": _num(ctx.get("threshold")),
                "ts_added": _int(q.get("ts_added")),
                "ts_size": _int(q.get("ts_size")),
                "energy_rmse_meV_per_atom": _num(q.get("energy_rmse_per_atom"), 1000.0),
                "energy_mae_meV_per_atom": _num(q.get("energy_mae_per_atom"), 1000.0),
                "forces_rmse_meV_per_A": _num(q.get("forces_rmse"), 1000.0),
                "forces_mae_meV_per_A": _num(q.get("forces_mae"), 1000.0),
                "stress_rmse_GPa": _num(q.get("stress_rmse")),
                "stress_mae_GPa": _num(q.get("stress_mae")),
                "fit_s": _num(q.get("train_wall_s")),
                "wall_s": run.get("duration"),
            }
        )
    return rows


def _potential_label(pot_fname: Any, train_dirs: dict[str, str]) -> str:
    """``train.N`` when the recorded potential path is a train run's pot.mtp (matched by
    its stored relative directory, so it works on a moved workflow), else the file name."""
    text = str(pot_fname or "").replace("\\", "/")
    for directory, label in train_dirs.items():
        if text == f"{directory}/{POTENTIAL}" or text.endswith(f"/{directory}/{POTENTIAL}"):
            return label
    return Path(text).name if text else ""


@dataclass
class GradeSet:
    """The grades one histogram line is drawn from."""

    task: str
    label: str
    grades: Any  # 1-D numpy array
    thresholds: tuple[float, ...]


def _selection_table(
    records: WorkflowRecords, trains: list[Any]
) -> tuple[list[dict[str, Any]], list[GradeSet]]:
    """One row per select / md_select run, and the grade sets of the histograms: one per
    select run (each is one iteration) and one per md_select iteration (its runs share
    the potential they ran with)."""
    import numpy as np

    train_dirs = {r.directory: r.label for r in trains if r.directory}
    rows: list[dict[str, Any]] = []
    sets: list[GradeSet] = []
    per_threshold: dict[float, int] = {}
    for run in records.runs("select"):
        q = run.quantities
        threshold = _num(run.job.params.get("grade"))
        per_threshold[threshold or 0.0] = iteration = per_threshold.get(threshold or 0.0, 0) + 1
        pot = _potential_label(run.job.params.get("pot_fname"), train_dirs)
        rows.append(
            {
                "run": run.label,
                "task": "select",
                "state": run.state,
                "potential": pot,
                "iteration": iteration,
                "threshold": threshold,
                "gamma_max": None,
                "n_candidates": _int(q.get("n_candidates")),
                "n_above": _int(q.get("n_above")),
                "n_collected": None,
                "md_steps": None,
                "n_selected": _int(q.get("n_selected")),
                "max_grade": _num(q.get("max_grade")),
            }
        )
        grades = np.asarray(q.get("grades", []), dtype=float).ravel()
        if grades.size:
            sets.append(
                GradeSet(
                    "select",
                    f"{run.label} ({pot})" if pot else run.label,
                    grades,
                    (threshold,) if threshold is not None else (),
                )
            )
    iterations: dict[str, int] = {}
    md_sets: dict[int, GradeSet] = {}
    for run in records.runs("md_select"):
        q = run.quantities
        sel = run.job.params.get("select_args") or {}
        gamma_min, gamma_max = _num(sel.get("gamma_min", 2.0)), _num(sel.get("gamma_max", 10.0))
        key = str(run.job.params.get("pot_fname"))
        iteration = iterations.setdefault(key, len(iterations) + 1)
        pot = _potential_label(key, train_dirs)
        rows.append(
            {
                "run": run.label,
                "task": "md_select",
                "state": run.state,
                "potential": pot,
                "iteration": iteration,
                "threshold": gamma_min,
                "gamma_max": gamma_max,
                "n_candidates": None,
                "n_above": None,
                "n_collected": _int(q.get("n_collected")),
                "md_steps": _int(q.get("md_steps_done")),
                "n_selected": _int(q.get("n_selected")),
                "max_grade": _num(q.get("max_grade")),
            }
        )
        grades = np.asarray(q.get("grades", []), dtype=float).ravel()
        if grades.size:
            thresholds = tuple(t for t in (gamma_min, gamma_max) if t is not None)
            if iteration in md_sets:
                md_sets[iteration].grades = np.concatenate([md_sets[iteration].grades, grades])
            else:
                label = f"iteration {iteration}" + (f" ({pot})" if pot else "")
                md_sets[iteration] = GradeSet("md_select", label, grades, thresholds)
    return rows, sets + list(md_sets.values())


def _tasks_table(records: WorkflowRecords) -> tuple[list[dict[str, Any]], dict[str, list[float]]]:
    rows, walls = [], {}
    names = [*TASK_ORDER, *sorted(t for t in records.task_names() if t not in TASK_ORDER)]
    for task in names:
        runs = records.runs(task)
        if not runs:
            continue
        states = [r.state for r in runs]
        durations = [
            d for r in runs if r.state == "FINISHED" and (d := r.get("duration")) is not None
        ]
        walls[task] = durations
        rows.append(
            {
                "task": task,
                "runs": len(runs),
                "FINISHED": states.count("FINISHED"),
                "FAILED": states.count("FAILED"),
                "CANCELLED": states.count("CANCELLED"),
                "active": sum(s in ("CREATED", "SUBMITTED", "RUNNING") for s in states),
                "total_wall_s": sum(durations) if durations else None,
                "median_wall_s": statistics.median(durations) if durations else None,
                "max_wall_s": max(durations) if durations else None,
            }
        )
    return rows, walls


# ------------------------------------------------------------------------------ figures


def _figure(width: float, height: float, ncols: int = 1, **kwargs: Any) -> tuple[Any, Any]:
    """A pyplot-free Figure (see the module docstring) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False, **kwargs)[0]
    return fig, axes


def _save(fig: Any, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=DPI, format="png")
    tmp.replace(path)


def _set_ticks(ax: Any, labels: Sequence[str]) -> None:
    ax.set_xticks(range(len(labels)))
    rotate = len(labels) > 8 or max((len(s) for s in labels), default=0) > 9
    ax.set_xticklabels(labels, rotation=45 if rotate else 0, ha="right" if rotate else "center")


def _plot_ts_size(rows: list[dict[str, Any]], run_name: str, path: Path) -> str | None:
    """The paper's Figure 4: training-set size after each train run, the part added by
    that iteration stacked on top and coloured by stage."""
    if not rows:
        return "no train run in this workflow run"
    rows = [r for r in rows if r["ts_size"] is not None]
    if not rows:
        return "no train run recorded a training-set size (none finished)"
    fig, (ax,) = _figure(max(6.0, 0.55 * len(rows) + 3), 4.2)
    x = list(range(len(rows)))
    added = [r["ts_added"] or 0 for r in rows]
    before = [r["ts_size"] - a for r, a in zip(rows, added, strict=True)]
    ax.bar(x, before, color="0.78", edgecolor="0.5", label="from earlier iterations")
    seen: set[str] = set()
    for i, r in enumerate(rows):
        stage = r["stage"] or "other"
        colour = STAGE_COLOURS.get(stage, "tab:purple")
        ax.bar(
            i,
            added[i],
            bottom=before[i],
            color=colour,
            edgecolor="0.3",
            label=None if stage in seen else f"added ({stage})",
        )
        seen.add(stage)
        ax.annotate(
            f"{r['ts_size']}" + (f"\n+{added[i]}" if added[i] else ""),
            (i, r["ts_size"]),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.step(x, [r["ts_size"] for r in rows], where="mid", color="0.2", lw=1, alpha=0.6)
    _set_ticks(ax, [r["label"] for r in rows])
    ax.set_ylim(0, max(r["ts_size"] for r in rows) * 1.22 + 1)
    ax.set_xlabel("iteration (train run, in order)")
    ax.set_ylabel("training-set size [configurations]")
    ax.set_title(f"Training-set size per iteration — workflow run '{run_name}'")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    return None


def _plot_errors(rows: list[dict[str, Any]], run_name: str, path: Path) -> str | None:
    """The paper's Table 1 as curves: training-set RMSE and MAE per train run."""
    panels = [
        ("energy_rmse_meV_per_atom", "energy_mae_meV_per_atom", "Energy per atom", "meV/atom"),
        ("forces_rmse_meV_per_A", "forces_mae_meV_per_A", "Forces (MLIP-2 definitions)", "meV/Å"),
        ("stress_rmse_GPa", "stress_mae_GPa", "Stress (MLIP-2 definitions)", "GPa"),
    ]
    if not rows:
        return "no train run in this workflow run"
    keys = [k for p in panels for k in p[:2]]
    rows = [r for r in rows if any((r[k] or 0) > 0 for k in keys)]
    if not rows:
        return "no train run recorded training errors (none finished)"
    fig, axes = _figure(max(10.0, 0.45 * len(rows) * 3 + 4), 4.0, ncols=3)
    labels = [r["label"] for r in rows]
    for ax, (rmse, mae, title, unit) in zip(axes, panels, strict=True):
        drawn = False
        for key, name, style in ((rmse, "RMSE", "o-"), (mae, "MAE", "s--")):
            pts = [(i, r[key]) for i, r in enumerate(rows) if r[key] is not None and r[key] > 0]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=name, ms=5)
                drawn = True
        if drawn:
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", color="0.4")
        _set_ticks(ax, labels)
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.set_title(title)
        ax.set_ylabel(f"training-set error [{unit}]")
        ax.set_xlabel("iteration (train run)")
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(f"Training errors per iteration — workflow run '{run_name}'")
    _save(fig, path)
    return None


def _plot_grades(sets: list[GradeSet], path: Path) -> str | None:
    """Histograms of the extrapolation grades each selection saw, thresholds dashed."""
    import numpy as np

    if not sets:
        return "no select or md_select run recorded grades"
    everything = np.concatenate([np.clip(s.grades, GRADE_CLIP, None) for s in sets])
    everything = everything[np.isfinite(everything)]
    if not everything.size:
        return "every recorded grade is NaN"
    thresholds = [t for s in sets for t in s.thresholds if t and t > 0]
    lo = math.floor(
        math.log10(min(everything.min(), *thresholds) if thresholds else everything.min())
    )
    hi = math.ceil(
        math.log10(max(everything.max(), *thresholds) if thresholds else everything.max())
    )
    bins = np.logspace(lo, max(hi, lo + 1), 10 * max(hi - lo, 1) + 1)
    fig, axes = _figure(12.0, 4.4, ncols=2, sharey=False)
    for ax, task, title in (
        (axes[0], "select", "select (candidate sets)"),
        (axes[1], "md_select", "md_select (MD snapshots, per iteration)"),
    ):
        mine = [s for s in sets if s.task == task]
        if not mine:
            ax.text(
                0.5,
                0.5,
                f"no {task} run recorded grades",
                transform=ax.transAxes,
                ha="center",
                color="0.4",
            )
        drawn: dict[float, str] = {}
        for k, s in enumerate(mine):
            colour = f"C{k % 10}"
            g = np.clip(s.grades[np.isfinite(s.grades)], GRADE_CLIP, None)
            ax.hist(
                g,
                bins=bins,
                histtype="step",
                lw=1.5,
                color=colour,
                ls=("-", "--", ":", "-.")[k % 4],  # identical histograms stay visible
                label=f"{s.label}: {g.size} grades",
            )
            for t in s.thresholds:
                if t and t > 0 and t not in drawn:
                    drawn[t] = colour
        for t in sorted(drawn):
            name = (
                "threshold"
                if task == "select"
                else ("gamma_min" if t == min(drawn) else "gamma_max")
            )
            ax.axvline(t, ls="--", color="0.25" if task == "md_select" else drawn[t], lw=1)
            ax.annotate(
                f"{name} {t:g}",
                (t, 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -12),
                textcoords="offset points",
                fontsize=8,
                rotation=90,
                va="top",
            )
        ax.set_xscale("log")
        ax.set_xlim(bins[0], bins[-1])
        ax.set_xlabel(f"extrapolation grade (dimensionless, clipped at {GRADE_CLIP:g})")
        ax.set_ylabel("configurations per bin")
        ax.set_title(title)
        if mine:
            ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
    fig.suptitle("Extrapolation grades seen by the selections")
    _save(fig, path)
    return None


def _plot_walltime(walls: dict[str, list[float]], path: Path) -> str | None:
    """Per-run wall time of FINISHED runs per task type, the total annotated."""
    import numpy as np

    walls = {k: v for k, v in walls.items() if v}
    if not walls:
        return "no FINISHED run with start and end times"
    fig, (ax,) = _figure(max(6.0, 1.6 * len(walls) + 2), 4.4)
    names = list(walls)
    data = [walls[n] for n in names]
    ax.boxplot(data, positions=range(len(names)), widths=0.5, showfliers=False)
    rng = np.random.default_rng(0)  # jitter only: the same report twice is the same picture
    for i, values in enumerate(data):
        ax.plot(i + rng.uniform(-0.15, 0.15, len(values)), values, ".", alpha=0.5, color=f"C{i}")
    everything = [v for vs in data for v in vs]
    positive = [v for v in everything if v > 0]
    if positive and max(positive) / min(positive) > 100:
        ax.set_yscale("log")
    top = max(everything)
    for i, values in enumerate(data):
        ax.annotate(
            f"n={len(values)}\ntotal {sum(values):.1f} s",
            (i, 1),
            xycoords=("data", "axes fraction"),
            xytext=(0, -4),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=8,
        )
    if ax.get_yscale() == "linear":
        ax.set_ylim(0, top * 1.3 + 1e-9)
    else:
        ax.set_ylim(top=top * 10)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_xlabel("task type")
    ax.set_ylabel("wall time per run (ended − started) [s]")
    ax.set_title("Wall time per task type (FINISHED runs)")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    return None


def _parity(records: WorkflowRecords, report: Report, path: Path) -> str | None:
    """Parity plots of the last potential on its own training set, re-evaluated with the
    backend that trained it; fills ``report.tables["parity"]``."""
    import numpy as np

    from autopot.mtp.backend import backend_from_spec, compute_errors
    from autopot.mtp.cfg import read_cfg

    finished = records.runs("train", finished_only=True)
    if not finished:
        return "no FINISHED train run (no potential yet)"
    run = finished[-1]
    if not run.directory:
        return f"{run.label} has no run directory"
    run_dir = records.run_dir(run)
    pot, ts = run_dir / POTENTIAL, run_dir / TRAINING_SET
    for f in (pot, ts):
        if not f.is_file():
            return f"{run.label}: {_relative(f, records.directory)} is missing"
    atom_types = records.atom_types(run)
    spec = run.params.get("mtp_backend") or {"name": "motep"}
    name = spec.get("name", "motep")
    scratch = report.out_dir / ".parity-work"  # mlp writes files: keep them inside out_dir
    try:
        backend = backend_from_spec(spec)
        if getattr(backend, "name", "") == "mlp":
            predicted = backend.calc_efs(pot, ts, atom_types, workdir=scratch)  # type: ignore[call-arg]
        else:
            predicted = backend.calc_efs(pot, ts, atom_types)
    except Exception as exc:  # noqa: BLE001 - no mlp binary, motep missing, bad file: say so
        return f"backend {name!r} cannot evaluate {run.label}: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    reference = read_cfg(ts, atom_types)
    if len(reference) != len(predicted):
        return f"backend returned {len(predicted)} configurations for {len(reference)}"
    errors = compute_errors(reference, predicted)
    recorded = run.quantities

    panels: list[tuple[str, str, Any, Any, str]] = []
    e_ref, e_pred, f_ref, f_pred, s_ref, s_pred = [], [], [], [], [], []
    for a, b in zip(reference, predicted, strict=True):
        r, p = (a.calc.results if a.calc is not None else {}), b.calc.results
        if "energy" in r:
            e_ref.append(r["energy"] / len(a))
            e_pred.append(p["energy"] / len(b))
        if "forces" in r:
            f_ref.append(np.ravel(r["forces"]))
            f_pred.append(np.ravel(p["forces"]))
        if "stress" in r and "stress" in p:
            s_ref.append(np.ravel(r["stress"]) * GPA_PER_EV_A3)
            s_pred.append(np.ravel(p["stress"]) * GPA_PER_EV_A3)
    if e_ref:
        panels.append(("energy", "Energy per atom", np.array(e_ref), np.array(e_pred), "eV/atom"))
    if f_ref:
        panels.append(
            ("forces", "Force components", np.concatenate(f_ref), np.concatenate(f_pred), "eV/Å")
        )
    if s_ref:
        panels.append(
            ("stress", "Stress components", np.concatenate(s_ref), np.concatenate(s_pred), "GPa")
        )
    if not panels:
        return f"{run.label}: the training set has no reference energies, forces or stresses"

    table_units = {
        "energy": ("meV/atom", 1000.0, "_per_atom"),
        "forces": ("meV/Å", 1000.0, ""),
        "stress": ("GPa", 1.0, ""),
    }
    fig, axes = _figure(4.6 * len(panels), 5.2, ncols=len(panels))
    for ax, (key, title, ref, pred, unit) in zip(axes, panels, strict=True):
        t_unit, scale, suffix = table_units[key]
        rmse = errors[f"{key}_rmse{suffix}"]
        report.tables["parity"].append(
            {
                "quantity": title.lower(),
                "unit": t_unit,
                "n": int(ref.size),
                "rmse": _num(rmse, scale),
                "mae": _num(errors[f"{key}_mae{suffix}"], scale),
                "max": _num(errors[f"{key}_max{suffix}"], scale),
                "recorded_rmse": _num(recorded.get(f"{key}_rmse{suffix}"), scale),
            }
        )
        step = max(1, ref.size // MAX_PARITY_POINTS)
        ax.plot(
            ref[::step],
            pred[::step],
            ".",
            ms=4 if ref.size < 500 else 2,
            alpha=0.6,
            color="tab:blue",
            label=f"{ref.size} values" + (f" (every {step}th shown)" if step > 1 else ""),
        )
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        pad = 0.05 * (hi - lo) or 1e-3
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "--", color="0.3", lw=1, label="y = x")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_box_aspect(1)
        shown = rmse * scale
        ax.set_title(f"{title}\nRMSE {shown:.3g} {t_unit}", fontsize=10)
        ax.set_xlabel(f"reference [{unit}]")
        ax.set_ylabel(f"MTP [{unit}]")
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"Parity of {run.label} ({_relative(pot, records.directory)}) on its training set "
        f"({len(reference)} configurations, backend {name})"
    )
    _save(fig, path)
    return None


# ------------------------------------------------------------------------------ text, html, json


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return ""
    if spec == "s":
        return str(value)
    if spec == "d":
        return str(int(value))
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return format(value, spec)


def format_table(rows: list[dict[str, Any]], columns: list[Column]) -> list[str]:
    """Rows as aligned text lines (numbers right-aligned); columns empty in every row are left out."""
    columns = [c for c in columns if any(r.get(c[0]) is not None for r in rows)]
    cells = [[_fmt(r.get(key), spec) for key, _, spec in columns] for r in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, (_, h, _) in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.ljust(w) if spec == "s" else v.rjust(w)
            for v, w, (_, _, spec) in zip(values, widths, columns, strict=True)
        ).rstrip()

    return [line([h for _, h, _ in columns])] + [line(c) for c in cells]


def _headline(workflow: dict[str, Any]) -> str:
    return (
        f"AutoPot report: workflow run '{workflow.get('run_name')}' in {workflow.get('directory')}"
    )


def _workflow_facts(workflow: dict[str, Any]) -> list[tuple[str, str]]:
    converged = {True: "converged", False: "NOT converged", None: "no MD stage / not finished"}
    facts = [
        ("state", str(workflow.get("state"))),
        ("convergence", converged.get(workflow.get("converged"), str(workflow.get("converged")))),
        ("reference calls", str(_or(workflow.get("reference_calls"), "not recorded"))),
        ("atom types", str(workflow.get("atom_types") or "not recorded")),
        ("potential", str(workflow.get("potential") or "none (no finished train run)")),
        ("training set", str(workflow.get("training_set") or "none")),
    ]
    if workflow.get("latest_train"):
        facts.append(("latest train run", str(workflow["latest_train"])))
    return facts


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _version() -> str:
    import autopot

    return str(getattr(autopot, "__version__", "unknown"))


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
th { background: #eee; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.meta { color: #555; font-size: 0.9em; } .skip { color: #a33; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; }
"""


def _html_table(rows: list[dict[str, Any]], columns: list[Column]) -> str:
    esc = _html.escape
    columns = [c for c in columns if any(r.get(c[0]) is not None for r in rows)]
    head = "".join(f"<th>{esc(h)}</th>" for _, h, _ in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{'' if spec == 's' else ' class=num'}>{esc(_fmt(r.get(k), spec))}</td>"
            for k, _, spec in columns
        )
        + "</tr>\n"
        for r in rows
    )
    return f"<table><tr>{head}</tr>\n{body}</table>"


def render_html(report: Report) -> str:
    """One self-contained page: inline CSS, figures as base64 data URIs, nothing external."""
    esc = _html.escape
    wf = report.workflow
    parts = [
        "<!DOCTYPE html>",
        "<html lang=en><head><meta charset=utf-8>",
        f"<title>{esc(_headline(wf))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>AutoPot report: workflow run {esc(repr(wf.get('run_name')))}</h1>",
        f"<p class=meta>Directory {esc(str(wf.get('directory')))} · autopot {esc(_version())}"
        f" · generated {esc(report.generated)}</p>",
        "<table>"
        + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _workflow_facts(wf))
        + "</table>",
    ]
    for name, title in TABLE_TITLES.items():
        rows = report.tables.get(name) or []
        parts.append(f"<h2>{esc(title)}</h2>")
        parts.append(_html_table(rows, COLUMNS[name]) if rows else "<p>(none)</p>")
    parts.append("<h2>Figures</h2>")
    for name in FIGURES:
        if name in report.figures:
            data = base64.b64encode(report.figures[name].read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img alt="{esc(name)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{esc(report.figures[name].name)}</figcaption></figure>"
            )
        elif name in report.skipped:
            parts.append(f"<p class=skip>{esc(name)}: skipped: {esc(report.skipped[name])}</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _jsonable(value: Any) -> Any:
    """Plain JSON data: numpy scalars to Python, NaN/inf to null, paths to strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value if isinstance(value, int | str) else str(value)
