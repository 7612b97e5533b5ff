"""The validation part of ``autopot report``: Table 2 rows and five figures.

EOS curves, phonon bands and the vacancy's NEB path of the potential overlaid on the
reference's (read from the recorded simulation runs), parity on the held-out set, and held-out error per train run
beside the training error (validation error falling with every iteration, or not).
Each plot returns None when written, else why it was skipped (the report's convention).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autopot.store.workflow_records import WorkflowRecords

DPI = 110


def load(records: WorkflowRecords) -> dict[str, Any] | None:
    """The workflow run's validation: the file the stage (or ``autopot validate``) wrote."""
    from autopot.validation.api import latest_result, results_path

    part = records.summary.get("validation") or {}
    if part.get("potential"):
        path = results_path(records.directory, records.run_name, str(part["potential"]))
        if path.is_file():
            import json

            data: dict[str, Any] = json.loads(path.read_text())
            return data
    return latest_result(records.directory, records.run_name)


def table_rows(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Rows for the report's "validation" table."""
    if not result:
        return []
    return [
        {
            "property": r["property"],
            "unit": r.get("unit"),
            "value": r.get("value"),
            "reference": r.get("reference"),
            "rel_err_pct": None if r.get("rel_err") is None else 100 * r["rel_err"],
            "tolerance": r.get("tolerance"),
            "pass": {True: "yes", False: "NO", None: "n/a"}[r.get("pass")],
        }
        for r in result.get("rows", [])
    ]


def plots(
    records: WorkflowRecords, result: dict[str, Any] | None
) -> dict[str, Callable[[Path], str | None]]:
    """name -> plot(path) for the report's figure loop; none for a workflow run that was
    never validated (--no-validate, not converged, older runs): nothing to skip there."""
    if not result:
        return {}

    def need(fn: Callable[[dict[str, Any], Path], str | None]) -> Callable[[Path], str | None]:
        return lambda path: fn(result, path)

    return {
        "val_eos": need(lambda r, p: plot_eos(records, r, p)),
        "val_phonon": need(lambda r, p: plot_phonons(records, r, p)),
        "val_neb": need(lambda r, p: plot_neb(records, r, p)),
        "val_parity": need(plot_parity),
        "val_iter": need(plot_per_iteration),
    }


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _save(fig: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=DPI, format="png")
    tmp.replace(path)


def _quantities(records: WorkflowRecords, label: str | None) -> dict[str, Any] | None:
    if not label:
        return None
    try:
        return dict(records.run(label).quantities)
    except Exception:  # noqa: BLE001 - a report of a copied directory may lack a run
        return None


def _pair(
    records: WorkflowRecords, result: dict[str, Any], task: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    return (
        _quantities(records, (result.get("runs") or {}).get(task)),
        _quantities(records, (result.get("reference_runs") or {}).get(task)),
    )


def plot_eos(records: WorkflowRecords, result: dict[str, Any], path: Path) -> str | None:
    mine, ref = _pair(records, result, "eos")
    if not mine or not ref:
        return "no EOS runs in this validation"
    fig, (ax,) = _figure(5.5, 4.0)
    for q, name, style in ((ref, "reference", "ko-"), (mine, result["potential"], "r^--")):
        n = q["V0"] / q["V0_per_atom"] if q.get("V0_per_atom") else 1.0
        order = sorted(range(len(q["volumes"])), key=lambda i: q["volumes"][i])
        ax.plot(
            [q["volumes"][i] / n for i in order],
            [q["energies"][i] / n for i in order],
            style,
            ms=4,
            label=f"{name}: a0 {q.get('a0_cubic') or float('nan'):.4f} A, B0 {q['B0_GPa']:.1f} GPa",
        )
    ax.set_xlabel("volume per atom (A^3)")
    ax.set_ylabel("energy per atom (eV)")
    ax.set_title("Equation of state")
    ax.legend(fontsize="small")
    _save(fig, path)
    return None


def plot_phonons(records: WorkflowRecords, result: dict[str, Any], path: Path) -> str | None:
    mine, ref = _pair(records, result, "phonon")
    if not mine or not ref:
        return "no phonon runs in this validation"
    fig, (ax,) = _figure(6.5, 4.0)
    for q, name, colour, ls in (
        (ref, "reference", "k", "-"),
        (mine, result["potential"], "r", "--"),
    ):
        first = True
        for dist, freqs in zip(q["band_distances"], q["band_frequencies_THz"], strict=True):
            for branch in zip(*freqs, strict=True):
                ax.plot(dist, branch, color=colour, ls=ls, lw=1, label=name if first else None)
                first = False
    ticks = [d[0] for d in ref["band_distances"]] + [ref["band_distances"][-1][-1]]
    for x in ticks:
        ax.axvline(x, color="0.8", lw=0.5)
    ax.set_xlim(ticks[0], ticks[-1])
    ax.set_xticks([])
    ax.set_ylabel("frequency (THz)")
    ax.set_title("Phonon bands: " + " ".join(str(s) for s in ref.get("band_labels", []))[:60])
    ax.legend(fontsize="small")
    _save(fig, path)
    return None


def plot_neb(records: WorkflowRecords, result: dict[str, Any], path: Path) -> str | None:
    """The vacancy hop's minimum-energy path (climbing-image NEB) of both, overlaid."""
    mine, ref = _pair(records, result, "vacancy")
    if (
        not mine
        or not ref
        or not mine.get("migration_energies")
        or not ref.get("migration_energies")
    ):
        return "no vacancy migration in this validation"
    fig, (ax,) = _figure(5.5, 4.0)
    for q, name, style in ((ref, "reference", "ko-"), (mine, result["potential"], "r^--")):
        energies = q["migration_energies"]
        n = len(energies) - 1
        ax.plot(
            [i / n for i in range(n + 1)],
            energies,
            style,
            ms=4,
            label=f"{name}: barrier {q['migration_barrier']:.3f} eV",
        )
    ax.set_xlabel("reaction coordinate (image / images)")
    ax.set_ylabel("energy relative to the initial state (eV)")
    ax.set_title("Vacancy migration (NEB)")
    ax.legend(fontsize="small")
    _save(fig, path)
    return None


def plot_parity(result: dict[str, Any], path: Path) -> str | None:
    parity = (result.get("heldout") or {}).get("parity")
    if not parity:
        return "no held-out set in this validation"
    fig, axes = _figure(9.0, 4.0, ncols=2)
    h = result["heldout"]
    for ax, (ref, pred, what, unit, err, scale) in zip(
        axes,
        (
            (
                "energy_per_atom_ref",
                "energy_per_atom_pred",
                "energy",
                "eV/atom",
                "energy_rmse_per_atom",
                1000,
            ),
            ("forces_ref", "forces_pred", "force components", "eV/A", "forces_rmse", 1000),
        ),
        strict=True,
    ):
        x, y = parity[ref], parity[pred]
        lo, hi = min(min(x), min(y)), max(max(x), max(y))
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.6)
        ax.plot(x, y, ".", ms=3, alpha=0.6)
        rmse = h.get(err)
        ax.set_title(
            f"held-out {what}" + (f": RMSE {rmse * scale:.2f} m{unit}" if rmse is not None else "")
        )
        ax.set_xlabel(f"reference ({unit})")
        ax.set_ylabel(f"{result['potential']} ({unit})")
    fig.suptitle(
        f"{h.get('n_frames')} frames of reference MD at {h.get('temperatures_K')} K (never trained on)",
        fontsize="small",
    )
    _save(fig, path)
    return None


def plot_per_iteration(result: dict[str, Any], path: Path) -> str | None:
    rows = (result.get("heldout") or {}).get("per_train") or []
    if not rows:
        return "no held-out errors per train run"
    fig, axes = _figure(9.0, 3.8, ncols=2)
    labels = [r["train"] for r in rows]
    x = range(len(rows))
    for ax, key, what, unit in (
        (axes[0], "energy_rmse_per_atom", "energy RMSE", "meV/atom"),
        (axes[1], "forces_rmse", "force RMSE", "meV/A"),
    ):
        for part, style, name in (
            ("heldout", "o-", "held-out (validation)"),
            ("training", "s--", "training"),
        ):
            ys = [(r.get(part) or {}).get(key) for r in rows]
            ax.plot(
                [i for i, y in zip(x, ys, strict=True) if y is not None],
                [y * 1000 for y in ys if y is not None],
                style,
                ms=4,
                label=name,
            )
        ax.set_yscale("log")
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize="small")
        ax.set_ylabel(f"{what} ({unit})")
        ax.legend(fontsize="small")
    fig.suptitle("Error per train run: held-out set vs training set", fontsize="small")
    _save(fig, path)
    return None
