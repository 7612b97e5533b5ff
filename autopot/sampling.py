"""Candidate configurations: supercells, random strains, perturbations, random alloys.

All functions are deterministic under a ``numpy.random.Generator``, so a restarted
workflow regenerates identical candidates (and identical jobs). Built on ase directly:
mlippykit's samplers write files and pull in atomman/pandas at import, which would make
every task process start slowly for a few lines of numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def bulk_supercells(symbol: str = "Cu", crystal: str = "fcc", a: float | None = None,
                    sizes: Sequence[tuple[int, int, int]] = ((2, 2, 2), (3, 3, 3))) -> list[Any]:
    """Conventional cubic cells of ``symbol`` repeated by each of ``sizes``."""
    from ase.build import bulk

    unit = bulk(symbol, crystal, a=a, cubic=True)
    return [unit.repeat(tuple(size)) for size in sizes]


def strained(atoms: Any, max_strain: float = 0.02, n: int = 10, rng: np.random.Generator | None = None) -> list[Any]:
    """``n`` copies under random symmetric strain tensors with entries in ±``max_strain``."""
    rng = rng or np.random.default_rng()
    out = []
    for _ in range(n):
        e = rng.uniform(-max_strain, max_strain, (3, 3))
        e = 0.5 * (e + e.T)
        copy = atoms.copy()
        copy.set_cell(atoms.cell.array @ (np.eye(3) + e), scale_atoms=True)
        out.append(copy)
    return out


def perturbed(atoms: Any, amplitude: tuple[float, float] | float = (0.02, 0.05), n: int = 10,
              rng: np.random.Generator | None = None) -> list[Any]:
    """``n`` copies with every atom displaced in a random direction by a length drawn
    uniformly from ``amplitude`` (Å)."""
    rng = rng or np.random.default_rng()
    lo, hi = (amplitude, amplitude) if isinstance(amplitude, (int, float)) else amplitude
    out = []
    for _ in range(n):
        direction = rng.normal(size=(len(atoms), 3))
        direction /= np.linalg.norm(direction, axis=1)[:, None]
        copy = atoms.copy()
        copy.positions += direction * rng.uniform(lo, hi, size=(len(atoms), 1))
        out.append(copy)
    return out


def random_alloys(base_atoms: Any, species: Sequence[str] = ("Cu", "Au"), n: int = 10,
                  rng: np.random.Generator | None = None, alpha: float = 1.0) -> list[Any]:
    """``n`` random substitutional alloys of ``base_atoms`` with Dirichlet(``alpha``)
    compositions (so compositions cover the whole simplex, not just its centre); the
    cell is scaled by Vegard's law between the elements' reference lattice constants."""
    from ase.data import atomic_numbers, reference_states

    rng = rng or np.random.default_rng()
    natoms = len(base_atoms)
    a_ref = [reference_states[atomic_numbers[s]].get("a") or 0.0 for s in species]
    a_base = reference_states[atomic_numbers[base_atoms[0].symbol]].get("a") or 1.0
    out = []
    for _ in range(n):
        frac = rng.dirichlet([alpha] * len(species))
        counts = np.floor(frac * natoms).astype(int)
        counts[np.argmax(frac - counts / natoms)] += natoms - counts.sum()
        symbols = np.repeat(np.array(species), counts)
        rng.shuffle(symbols)
        copy = base_atoms.copy()
        copy.set_chemical_symbols(list(symbols))
        if all(a_ref):
            scale = float(np.dot(counts / natoms, a_ref)) / a_base
            copy.set_cell(base_atoms.cell.array * scale, scale_atoms=True)
        out.append(copy)
    return out


def candidate_set(symbol: str = "Cu", crystal: str = "fcc", a: float | None = None,
                  sizes: Sequence[tuple[int, int, int]] = ((1, 1, 1), (2, 2, 2), (2, 2, 3)),
                  n_per_size: int = 50, max_strain: float = 0.02,
                  amplitude: tuple[float, float] = (0.02, 0.05), seed: int = 0) -> list[Any]:
    """Strained then perturbed supercells of several sizes (the Cu demo's candidates)."""
    rng = np.random.default_rng(seed)
    out = []
    for base in bulk_supercells(symbol, crystal, a, sizes):
        for atoms in strained(base, max_strain, n_per_size, rng):
            out.extend(perturbed(atoms, amplitude, 1, rng))
    return out
