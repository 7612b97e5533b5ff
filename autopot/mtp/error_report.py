"""Training/validation errors exactly as MLIP-2 defines, prints and parses them.

One definition for both backends, so a user switching backend compares like with like
(MLIP-2's ``ErrorMonitor``, checked against a real ``mlp calc-errors`` report):

* energy, energy per atom: per configuration |dE| (divided by the atom count);
* forces: per atom d_i = F_pred - F_ref; max = max |d_i|, MAE = mean |d_i| / 3,
  RMSE = sqrt(mean |d_i|^2 / 3) (the per-component scale of the per-atom norms);
* stresses: full 3x3 difference D_k per configuration, times the volume ("in eV", the
  virial) or in GPa; max = max ||D_k||_F, MAE = mean ||D_k||_F / 9,
  RMSE = sqrt(mean ||D_k||_F^2 / 9);
* ``*_max_rel`` = max |diff| / max |reference|, ``*_rmse_rel`` = RMS(diff) / RMS(reference).

Keys (stable: tasks push them as quantities, the report reads them): ``energy_{mae,rmse,max}``
(eV), ``energy_{mae,rmse,max}_per_atom`` (eV/atom), ``forces_{mae,rmse,max}`` (eV/A),
``stress_ev_{mae,rmse,max}`` (eV), ``stress_{mae,rmse,max}`` (GPa), the ``_rel`` ratios and
``{energy,forces,stress}_count``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from ase import units

from autopot.errors import MTPError

if TYPE_CHECKING:
    from ase import Atoms

GPA_PER_EV_A3 = 1.0 / units.GPa  # 160.21766208, as MLIP-2 converts

#: (MLIP-2 section title, key prefix, key suffix, has relative lines, count noun)
SECTIONS = (
    ("Energy", "energy", "", False, "configurations"),
    ("Energy per atom", "energy", "_per_atom", False, "configurations"),
    ("Forces", "forces", "", True, "atoms"),
    ("Stresses (in eV)", "stress_ev", "", True, "configurations"),
    ("Stresses (in GPa)", "stress", "", True, "configurations"),
)
#: older MLIP builds' titles for the same sections
_ALIASES = {
    "Virial stresses (in pressure units)": "Stresses (in GPa)",
    "Stresses (in pressure units)": "Stresses (in GPa)",
    "Stresses (in energy units)": "Stresses (in eV)",
}
_STATS = {
    "Maximal absolute difference": "max",
    "Average absolute difference": "mae",
    "RMS absolute difference": "rmse",
    "Max(ForceDiff) / Max(Force)": "max_rel",
    "RMS(ForceDiff) / RMS(Force)": "rmse_rel",
    "Max(StresDiff) / Max(Stres)": "max_rel",
    "RMS(StresDiff) / RMS(Stres)": "rmse_rel",
}


def _full(voigt: np.ndarray) -> np.ndarray:
    """ASE Voigt (xx yy zz yz xz xy) -> 3x3."""
    xx, yy, zz, yz, xz, xy = voigt
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def _stats(diff: np.ndarray, ref: np.ndarray, dim: int) -> dict[str, float]:
    """MLIP-2's statistics of per-item difference norms ``diff`` (reference norms ``ref``)."""
    if diff.size == 0:
        return {}
    out = {
        "max": float(diff.max()),
        "mae": float(diff.mean() / dim),
        "rmse": float(np.sqrt(np.mean(diff**2) / dim)),
    }
    if ref.size:
        rmax, rrms = float(ref.max()), float(np.sqrt(np.mean(ref**2)))
        out["max_rel"] = out["max"] / rmax if rmax > 0 else float("nan")
        out["rmse_rel"] = float(np.sqrt(np.mean(diff**2))) / rrms if rrms > 0 else float("nan")
    return out


def compute_errors(reference: Sequence[Atoms], predicted: Sequence[Atoms]) -> dict[str, float]:
    """Errors of ``predicted`` against ``reference`` with MLIP-2's definitions (module doc).

    Quantities missing from a reference configuration are skipped for it, as MLIP-2 does;
    a quantity no configuration has gets NaN for its MAE/RMSE/max and a count of 0.
    """
    de, dea, df, fref, ds, sref, dsg, sgref = ([] for _ in range(8))
    for ref, pred in zip(reference, predicted, strict=True):
        r = ref.calc.results if ref.calc is not None else {}
        p = pred.calc.results
        n = len(ref)
        if "energy" in r:
            d = abs(float(p["energy"]) - float(r["energy"]))
            de.append(d)
            dea.append(d / n)
        if "forces" in r and n:
            fr = np.asarray(r["forces"], dtype=float)
            df.append(np.linalg.norm(np.asarray(p["forces"], dtype=float) - fr, axis=1))
            fref.append(np.linalg.norm(fr, axis=1))
        if "stress" in r and "stress" in p and ref.cell.rank == 3:
            vol = abs(float(ref.get_volume()))
            sr, sp = _full(np.asarray(r["stress"], float)), _full(np.asarray(p["stress"], float))
            dn, rn = np.linalg.norm(sp - sr), np.linalg.norm(sr)
            ds.append(dn * vol)
            sref.append(rn * vol)
            dsg.append(dn * GPA_PER_EV_A3)
            sgref.append(rn * GPA_PER_EV_A3)
    cat = lambda x: np.concatenate(x) if x else np.zeros(0)  # noqa: E731
    groups = {
        ("energy", ""): (np.array(de), np.zeros(0), 1),
        ("energy", "_per_atom"): (np.array(dea), np.zeros(0), 1),
        ("forces", ""): (cat(df), cat(fref), 3),
        ("stress_ev", ""): (np.array(ds), np.array(sref), 9),
        ("stress", ""): (np.array(dsg), np.array(sgref), 9),
    }
    out: dict[str, float] = {}
    for (prefix, suffix), (diff, reference_values, dim) in groups.items():
        stats = _stats(diff, reference_values, dim)
        for stat in ("mae", "rmse", "max"):
            out[f"{prefix}_{stat}{suffix}"] = stats.get(stat, float("nan"))
        for stat in ("max_rel", "rmse_rel"):
            if stat in stats:
                out[f"{prefix}_{stat}{suffix}"] = stats[stat]
    out["energy_count"] = float(len(de))
    out["forces_count"] = float(sum(len(x) for x in df))
    out["stress_count"] = float(len(ds))
    return out


def parse_mlp_errors(text: str) -> dict[str, float]:
    """Errors from the last MLIP-2 "Errors report" block (``mlp train``/``calc-errors``),
    with the keys of :func:`compute_errors`."""
    start = text.rfind("Errors report")
    if start < 0:
        raise MTPError("no 'Errors report' block in mlp output", field="mlp output")
    titles = {t: (p, s) for t, p, s, _, _ in SECTIONS}
    out: dict[str, float] = {}
    section: tuple[str, str] | None = None
    for raw in text[start:].splitlines()[1:]:
        line = " ".join(raw.split())
        if line.endswith(":") and not line.startswith("Errors checked"):
            title = line[:-1]
            section = titles.get(_ALIASES.get(title, title))
            continue
        if section is None:
            continue
        prefix, suffix = section
        if line.startswith("Errors checked for "):
            words = line.split()
            if len(words) >= 4 and words[3].isdigit() and not suffix:
                out[f"{'stress' if prefix.startswith('stress') else prefix}_count"] = float(
                    words[3]
                )
            continue
        key, sep, val = (s.strip() for s in line.partition("="))
        stat = _STATS.get(key) if sep else None
        if stat is None:
            continue
        try:
            out[f"{prefix}_{stat}{suffix}"] = float(val)
        except ValueError:
            raise MTPError(f"cannot parse {raw.strip()!r}", field="mlp output") from None
    if "energy_rmse_per_atom" not in out:
        raise MTPError("mlp errors report has no 'Energy per atom' section", field="mlp output")
    return out


def _g6(x: float) -> str:
    """C++ iostream's default float output (6 significant digits, %g)."""
    return f"{x:.6g}"


def format_mlp_errors(errors: dict[str, float]) -> str:
    """The "Errors report" block as ``mlp calc-errors``/``mlp train`` print it."""
    lines = ["_________________Errors report_________________"]
    counts = {
        "energy": "energy_count",
        "forces": "forces_count",
        "stress_ev": "stress_count",
        "stress": "stress_count",
    }
    for title, prefix, suffix, rel, noun in SECTIONS:
        n = int(errors.get(counts[prefix], 0))
        lines += [f"{title}:", f"\tErrors checked for {n} {noun}"]
        for label, stat in (
            ("Maximal absolute difference", "max"),
            ("Average absolute difference", "mae"),
            ("RMS     absolute difference", "rmse"),
        ):
            lines.append(f"\t{label} = {_g6(errors.get(f'{prefix}_{stat}{suffix}', 0.0))}")
        if rel:
            what = "Force" if prefix == "forces" else "Stres"
            lines.append(
                f"\tMax({what}Diff) / Max({what}) = {_g6(errors.get(f'{prefix}_max_rel', 0.0))}"
            )
            lines.append(
                f"\tRMS({what}Diff) / RMS({what}) = {_g6(errors.get(f'{prefix}_rmse_rel', 0.0))}"
            )
        lines.append("")
    lines[-1] = "_______________________________________________"
    return "\n".join(lines) + "\n\n"  # MLIP-2 ends the block with an empty line
