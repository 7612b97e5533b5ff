"""EAM setfl files from the Zhou–Johnson–Wadley (2004) analytic embedded-atom model.

Why: a cheap reference that covers the AutoPot paper's systems (W; Mo–Ta) stands in for
VASP in benchmarks and tests, and no EAM file for them ships with ASE or the machines this
runs on. The model (X. W. Zhou, R. A. Johnson, H. N. G. Wadley, Phys. Rev. B 69, 144113
(2004)) is analytic, so its tables are generated here from the published parameters, as
the LAMMPS ``tools/eam_database`` generator does:

- density  f(r)   = fe exp(-beta (r/re - 1)) / (1 + (r/re - lambda)^20)
- pair     phi(r) = A exp(-alpha (r/re - 1)) / (1 + (r/re - kappa)^20)
                    - B exp(-beta (r/re - 1)) / (1 + (r/re - lambda)^20)
- cross pair (Johnson's rule) phi_ab = (f_b/f_a phi_aa + f_a/f_b phi_bb) / 2
- embedding: a cubic in (rho/rho_n - 1) below rho_n = 0.85 rho_e, a cubic in
  (rho/rho_e - 1) up to 1.15 rho_e, and Fn (1 - eta ln x) x^eta, x = rho/rho_s above.

Cross interactions of an alloy come from the mixing rule, not from a fit to the alloy;
fine for a stand-in reference, not for alloy physics.

    write_setfl(["Mo", "Ta"], "MoTa.eam.alloy")   # then {"calculator": "eam", "potential": ...}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autopot.errors import AutopotError


@dataclass(frozen=True)
class Element:
    """One element's published parameters (Table I of the paper; names as there)."""

    re: float
    fe: float
    rhoe: float
    rhos: float
    alpha: float
    beta: float
    A: float
    B: float
    kappa: float
    lam: float
    Fn0: float
    Fn1: float
    Fn2: float
    Fn3: float
    F0: float
    F1: float
    F2: float
    F3: float
    eta: float
    Fe: float
    Z: int
    mass: float

    @property
    def lattice(self) -> float:
        """The fcc lattice constant the tables' header quotes (sqrt(2) re)."""
        return math.sqrt(2.0) * self.re


#: Zhou, Johnson, Wadley (2004), Table I: the bcc refractory metals and Cu.
ELEMENTS: dict[str, Element] = {
    "W": Element(2.740840, 3.487340, 37.234847, 37.234847, 8.900114, 4.746728, 0.882435,
                 1.394592, 0.139209, 0.278417, -4.946281, -0.148818, 0.365057, -4.432406,
                 -4.96, 0.0, 0.661935, 0.348147, 0.582714, -4.961306, 74, 183.84),
    "Mo": Element(2.728100, 2.723710, 29.354065, 29.354065, 8.393531, 4.476550, 0.708787,
                  1.120373, 0.137640, 0.275280, -3.692913, -0.178812, 0.380450, -3.133650,
                  -3.71, 0.0, 0.875874, 0.776222, 0.790879, -3.712093, 42, 95.94),
    "Ta": Element(2.860082, 3.086341, 33.787168, 33.787168, 8.489528, 4.527748, 0.611679,
                  1.032101, 0.176977, 0.353954, -5.103845, -0.405524, 1.112997, -3.585325,
                  -5.14, 0.0, 1.640098, 0.221375, 0.848843, -5.141526, 73, 180.9479),
    "Cu": Element(2.556162, 1.554485, 21.175871, 21.175395, 8.127620, 4.334731, 0.396620,
                  0.548085, 0.308782, 0.756515, -2.170269, -0.263788, 1.088878, -0.817603,
                  -2.19, 0.0, 0.561830, -2.100595, 0.310490, -2.186568, 29, 63.546),
}  # fmt: skip

R_MIN = 0.5  # Å: the functions are held constant inside (the nuclei never get that close)


def density(el: Element, r: np.ndarray) -> np.ndarray:
    x = np.maximum(r, R_MIN) / el.re
    return el.fe * np.exp(-el.beta * (x - 1.0)) / (1.0 + (x - el.lam) ** 20)


def pair(el: Element, r: np.ndarray) -> np.ndarray:
    x = np.maximum(r, R_MIN) / el.re
    rep = el.A * np.exp(-el.alpha * (x - 1.0)) / (1.0 + (x - el.kappa) ** 20)
    att = el.B * np.exp(-el.beta * (x - 1.0)) / (1.0 + (x - el.lam) ** 20)
    return rep - att


def cross_pair(a: Element, b: Element, r: np.ndarray) -> np.ndarray:
    fa, fb = density(a, r), density(b, r)
    return 0.5 * (fb / fa * pair(a, r) + fa / fb * pair(b, r))


def embedding(el: Element, rho: np.ndarray) -> np.ndarray:
    rho_n, rho_0 = 0.85 * el.rhoe, 1.15 * el.rhoe
    low = rho / rho_n - 1.0
    mid = rho / el.rhoe - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        x = rho / el.rhos
        high = el.Fe * (1.0 - el.eta * np.log(x)) * x**el.eta
    out = np.where(
        rho < rho_n,
        el.Fn0 + el.Fn1 * low + el.Fn2 * low**2 + el.Fn3 * low**3,
        np.where(
            rho < rho_0,
            el.F0 + el.F1 * mid + el.F2 * mid**2 + el.F3 * mid**3,
            high,
        ),
    )
    return np.where(rho == 0.0, 0.0, out)


def setfl_text(symbols: Sequence[str], nr: int = 2000, nrho: int = 2000) -> str:
    """The DYNAMO setfl (``.eam.alloy``) text for ``symbols``, in that order."""
    unknown = [s for s in symbols if s not in ELEMENTS]
    if unknown or not symbols:
        raise AutopotError(
            f"no Zhou 2004 parameters for {unknown or 'an empty list'} "
            f"(known: {', '.join(sorted(ELEMENTS))})",
            field="elements",
        )
    els = [ELEMENTS[s] for s in symbols]
    cutoff = math.sqrt(10.0) / 2.0 * max(e.lattice for e in els)
    r = np.linspace(0.0, cutoff, nr)
    rho_max = max(100.0, 2.0 * max(e.rhoe for e in els), *(density(e, r).max() for e in els))
    rho = np.linspace(0.0, rho_max, nrho)
    dr, drho = r[1] - r[0], rho[1] - rho[0]

    def block(values: np.ndarray) -> list[str]:
        return [" ".join(f"{v:.16e}" for v in values[i : i + 5]) for i in range(0, len(values), 5)]

    lines = [
        "Zhou, Johnson, Wadley, Phys. Rev. B 69, 144113 (2004): analytic EAM",
        "tabulated by autopot.reference.zhou2004 (cross terms: Johnson's mixing rule)",
        "",
        f"{len(els)} {' '.join(symbols)}",
        f"{nrho} {drho:.16e} {nr} {dr:.16e} {cutoff:.16e}",
    ]
    for e in els:
        lines.append(f"{e.Z} {e.mass} {e.lattice:.6f} fcc")
        lines += block(embedding(e, rho))
        lines += block(density(e, r))
    for i, a in enumerate(els):
        for b in els[: i + 1]:
            phi = pair(a, r) if a is b else cross_pair(a, b, r)
            lines += block(r * phi)
    return "\n".join(lines) + "\n"


def write_setfl(symbols: Sequence[str], path: str | Path, nr: int = 2000, nrho: int = 2000) -> Path:
    """Write the setfl file (atomically); its name should end in ``.eam.alloy`` for ASE."""
    from autopot.atomic import atomic_write_text

    path = Path(path)
    atomic_write_text(path, setfl_text(symbols, nr, nrho))
    return path
