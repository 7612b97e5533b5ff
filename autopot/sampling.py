"""Candidate configurations: supercells, random strains, perturbations, random alloys.

All functions are deterministic under a ``numpy.random.Generator``, so a restarted
workflow regenerates identical candidates (and identical jobs). Inputs are never modified.

mlippykit (read in site-packages, 0.0.2) is used where it fits: ``modifiers.make_random``
assigns species for a composition (largest-remainder rounding, random arrangement). Its
other helpers do not fit: ``perturb_atoms`` is a Gaussian rattle (no bounded 0.02-0.05 Å
amplitude), ``apply_strain`` takes given strains rather than drawing them, and
``create_valid_comps`` draws Dirichlet compositions through scipy.stats, which numpy's
Generator does identically without the import. It is imported inside functions only so
that ``import autopot.sampling`` stays at the cost of numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # ase stays out of the import path (see above)
    from ase import Atoms


def bulk_supercells(
    symbol: str = "Cu",
    crystal: str = "fcc",
    a: float | None = None,
    sizes: Sequence[tuple[int, int, int]] = ((2, 2, 2), (3, 3, 3)),
) -> list[Atoms]:
    """Conventional cubic cells of ``symbol`` repeated by each of ``sizes``."""
    from ase.build import bulk

    unit = (
        bulk(symbol, crystal, a=a, cubic=True)
        if a is not None
        else bulk(symbol, crystal, cubic=True)
    )
    return [unit.repeat(tuple(size)) for size in sizes]


def strained(
    atoms: Atoms, max_strain: float = 0.02, n: int = 10, rng: np.random.Generator | None = None
) -> list[Atoms]:
    """``n`` copies under random symmetric strain tensors with entries in ±``max_strain``."""
    rng = np.random.default_rng() if rng is None else rng
    if max_strain < 0:
        raise ValueError(f"max_strain must be >= 0, got {max_strain}")
    out = []
    for _ in range(n):
        e = rng.uniform(-max_strain, max_strain, (3, 3))
        e = 0.5 * (e + e.T)
        copy = atoms.copy()
        copy.set_cell(atoms.cell.array @ (np.eye(3) + e), scale_atoms=True)
        out.append(copy)
    return out


def perturbed(
    atoms: Atoms,
    amplitude: tuple[float, float] | float = (0.02, 0.05),
    n: int = 10,
    rng: np.random.Generator | None = None,
) -> list[Atoms]:
    """``n`` copies with every atom displaced in a random direction by a length drawn
    uniformly from ``amplitude`` (Å)."""
    rng = np.random.default_rng() if rng is None else rng
    lo, hi = (amplitude, amplitude) if isinstance(amplitude, (int, float)) else amplitude
    if not 0 <= lo <= hi:
        raise ValueError(f"amplitude must be 0 <= low <= high, got {amplitude}")
    out = []
    for _ in range(n):
        direction = rng.normal(size=(len(atoms), 3))
        direction /= np.linalg.norm(direction, axis=1)[:, None]
        copy = atoms.copy()
        copy.positions += direction * rng.uniform(lo, hi, size=(len(atoms), 1))
        out.append(copy)
    return out


def random_alloys(
    base_atoms: Atoms,
    species: Sequence[str] = ("Cu", "Au"),
    n: int = 10,
    rng: np.random.Generator | None = None,
    alpha: float = 1.0,
) -> list[Atoms]:
    """``n`` random substitutional alloys of ``base_atoms`` with Dirichlet(``alpha``)
    compositions (alpha=1 covers the whole simplex uniformly, not just its centre); the
    cell is scaled by Vegard's law between the elements' reference lattice constants
    when ase knows them, so that pure-Au cells are not compressed Cu cells."""
    from ase.data import atomic_numbers, reference_states
    from mlippykit.modifiers import make_random

    if len(species) < 1 or alpha <= 0:
        raise ValueError("random_alloys needs at least one species and alpha > 0")
    rng = np.random.default_rng() if rng is None else rng
    natoms = len(base_atoms)

    def lattice(symbol: str) -> float:
        state: dict[str, Any] = reference_states[atomic_numbers[symbol]] or {}
        return float(state.get("a") or 0.0)

    a_ref = [lattice(s) for s in species]
    a_base = lattice(base_atoms[0].symbol) if natoms else 0.0
    out = []
    for _ in range(n):
        frac = rng.dirichlet([alpha] * len(species))
        copy = base_atoms.copy()
        actual = make_random([copy], list(species), list(frac), rng=rng)
        if all(a_ref) and a_base:
            scale = float(np.dot(actual, a_ref)) / a_base
            copy.set_cell(base_atoms.cell.array * scale, scale_atoms=True)
        out.append(copy)
    return out


def candidate_set(
    symbol: str = "Cu",
    crystal: str = "fcc",
    a: float | None = None,
    sizes: Sequence[tuple[int, int, int]] = ((1, 1, 1), (2, 2, 2), (2, 2, 3)),
    n_per_size: int = 50,
    max_strain: float = 0.02,
    amplitude: tuple[float, float] = (0.02, 0.05),
    seed: int = 0,
    species: Sequence[str] | None = None,
    alpha: float = 1.0,
) -> list[Atoms]:
    """``n_per_size`` candidates per supercell size: (random alloy if ``species``, then)
    random strain, then random displacements -- the Cu demo's candidates by default.

    One Generator seeded by ``seed`` drives everything, so the same arguments always give
    the same list (and so the same content-hashed jobs on a restart).
    """
    rng = np.random.default_rng(seed)
    out = []
    for base in bulk_supercells(symbol, crystal, a, sizes):
        starts = (
            random_alloys(base, species, n_per_size, rng, alpha) if species else [base] * n_per_size
        )
        for start in starts:
            (atoms,) = strained(start, max_strain, 1, rng)
            out.extend(perturbed(atoms, amplitude, 1, rng))
    return out
