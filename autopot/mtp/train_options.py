"""The training options (``train_args``) both MTP backends accept: one table, one meaning.

Both backends take their defaults from :data:`TRAIN_OPTIONS` and check values with
:func:`resolve_train_args`, so ``train_args: {max_iter: 500, conv_tol: 1e-4}`` means the
same fit on motep and on MLIP-2's ``mlp``.  The columns ``motep`` and ``mlp`` say how each
option reaches the backend; the README's table is generated from the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autopot.errors import MTPError

#: the loss is compared over this many BFGS iterations for ``conv_tol`` (MLIP-2's window:
#: "if in 100 iterations loss decreases less than this, BFGS is finished")
CONV_WINDOW = 100


@dataclass(frozen=True)
class TrainOption:
    """One ``train_args`` key."""

    name: str
    type: type
    default: Any
    low: float | None  # inclusive lower bound (numbers)
    high: float | None  # inclusive upper bound (numbers)
    choices: tuple[str, ...] | None
    unit: str
    doc: str
    motep: str
    mlp: str


TRAIN_OPTIONS: tuple[TrainOption, ...] = (
    TrainOption(
        "max_iter",
        int,
        1000,
        0,
        None,
        None,
        "iterations",
        "BFGS iterations at most (0: only the linear pre-fit)",
        "scipy minimize maxiter",
        "--max-iter",
    ),
    TrainOption(
        "conv_tol",
        float,
        1e-3,
        0.0,
        1.0,
        None,
        "relative",
        f"stop when the loss fell by less than this fraction over the last "
        f"{CONV_WINDOW} iterations (0: always run max_iter)",
        f"callback: (f[k-{CONV_WINDOW}] - f[k]) / f[k-{CONV_WINDOW}] < conv_tol stops "
        "(scipy's own gtol=1e-5 stops too)",
        "--bfgs-conv-tol",
    ),
    TrainOption(
        "conv_window",
        int,
        CONV_WINDOW,
        1,
        None,
        None,
        "iterations",
        "the window of conv_tol: a warm-started refit that has stopped improving ends this "
        "many iterations later",
        "ConvergenceStop window",
        f"{CONV_WINDOW} only (MLIP-2's fixed window; anything else is refused)",
    ),
    TrainOption(
        "energy_weight",
        float,
        1.0,
        0.0,
        None,
        None,
        "",
        "weight of energies in the loss",
        "LossSetting.energy_weight",
        "--energy-weight",
    ),
    TrainOption(
        "force_weight",
        float,
        0.01,
        0.0,
        None,
        None,
        "",
        "weight of forces in the loss",
        "LossSetting.forces_weight",
        "--force-weight",
    ),
    TrainOption(
        "stress_weight",
        float,
        0.001,
        0.0,
        None,
        None,
        "",
        "weight of stresses in the loss",
        "LossSetting.stress_weight",
        "--stress-weight",
    ),
    TrainOption(
        "lls",
        bool,
        True,
        None,
        None,
        None,
        "",
        "fit the linear coefficients before the non-linear fit of a fresh potential",
        "LLS step before BFGS",
        "false: --skip-preinit",
    ),
    TrainOption(
        "seed",
        int,
        0,
        0,
        None,
        None,
        "",
        "random initialisation of the radial coefficients of a fresh potential",
        "numpy default_rng(seed)",
        "none (MLIP-2 seeds from std::random_device)",
    ),
    TrainOption(
        "method",
        str,
        "BFGS",
        None,
        None,
        ("BFGS", "L-BFGS-B"),
        "",
        "non-linear optimiser",
        "scipy minimize method",
        "BFGS only (anything else is refused)",
    ),
    TrainOption(
        "save_active_set",
        bool,
        True,
        None,
        None,
        None,
        "",
        "write <pot>.als.npz (the active set on the training set) after fitting",
        "autopot active set",
        "autopot active set",
    ),
)

OPTIONS_BY_NAME = {o.name: o for o in TRAIN_OPTIONS}


def defaults() -> dict[str, Any]:
    return {o.name: o.default for o in TRAIN_OPTIONS}


def _check(opt: TrainOption, value: Any) -> Any:
    where = f"train_args.{opt.name}"
    if opt.type is bool:
        if not isinstance(value, bool):
            raise MTPError(f"expected true or false, got {value!r}", field=where)
        return value
    if opt.type is str:
        if not isinstance(value, str) or (opt.choices and value.upper() not in opt.choices):
            raise MTPError(
                f"expected one of {', '.join(opt.choices or ())}, got {value!r}", field=where
            )
        return value.upper()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MTPError(f"expected a number, got {value!r}", field=where)
    if opt.type is int:
        if float(value) != int(value):
            raise MTPError(f"expected an integer, got {value!r}", field=where)
        value = int(value)
    else:
        value = float(value)
    if (opt.low is not None and value < opt.low) or (opt.high is not None and value > opt.high):
        hi = "" if opt.high is None else f" and <= {opt.high}"
        raise MTPError(f"must be >= {opt.low}{hi}, got {value!r}", field=where)
    return value


def resolve_train_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults from :data:`TRAIN_OPTIONS`, overridden by ``args``; unknown keys and bad
    values are refused with the key named."""
    unknown = sorted(set(args) - set(OPTIONS_BY_NAME))
    if unknown:
        raise MTPError(
            f"unknown training option {unknown[0]!r}; known: {', '.join(OPTIONS_BY_NAME)}",
            field=f"train_args.{unknown[0]}",
        )
    out = defaults()
    for key, value in args.items():
        if value is not None:  # unset keys of a run space's schema: the default applies
            out[key] = _check(OPTIONS_BY_NAME[key], value)
    return out


def markdown_table() -> str:
    """The table of autopot/mtp/README.md (kept in sync by a test)."""
    rows = [
        "| key | type | default | range | meaning | motep | mlp |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in TRAIN_OPTIONS:
        if o.choices:
            rng = " / ".join(o.choices)
        elif o.low is None and o.high is None:
            rng = ""
        else:
            rng = f"≥ {o.low:g}" + (f", ≤ {o.high:g}" if o.high is not None else "")
        unit = f" ({o.unit})" if o.unit else ""
        rows.append(
            f"| `{o.name}` | {o.type.__name__} | {o.default!r} | {rng} | "
            f"{o.doc}{unit} | {o.motep} | {o.mlp} |"
        )
    return "\n".join(rows)
