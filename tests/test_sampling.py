"""Candidate sampling: reproducible under a seed, within its bounds."""

from __future__ import annotations

import numpy as np

from autopot.sampling import bulk_supercells, candidate_set, perturbed, random_alloys, strained


def test_reproducible_under_seed() -> None:
    a = candidate_set(n_per_size=4, seed=3)
    b = candidate_set(n_per_size=4, seed=3)
    assert len(a) == 12
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.positions, y.positions)
        np.testing.assert_array_equal(x.cell.array, y.cell.array)


def test_strain_and_perturbation_bounds() -> None:
    rng = np.random.default_rng(0)
    (base,) = bulk_supercells("Cu", sizes=((2, 2, 2),))
    for atoms in strained(base, max_strain=0.02, n=20, rng=rng):
        eps = np.linalg.solve(base.cell.array, atoms.cell.array) - np.eye(3)
        assert np.abs(eps).max() <= 0.02 + 1e-12 and np.allclose(eps, eps.T)
    for atoms in perturbed(base, amplitude=(0.02, 0.05), n=5, rng=rng):
        d = np.linalg.norm(atoms.positions - base.positions, axis=1)
        assert d.min() >= 0.02 - 1e-12 and d.max() <= 0.05 + 1e-12


def test_dirichlet_alloys_cover_compositions() -> None:
    rng = np.random.default_rng(1)
    (base,) = bulk_supercells("Cu", sizes=((2, 2, 2),))
    alloys = random_alloys(base, ("Cu", "Au"), n=30, rng=rng)
    fractions = [np.mean(np.array(a.get_chemical_symbols()) == "Au") for a in alloys]
    assert all(len(a) == 32 for a in alloys)
    assert min(fractions) < 0.2 and max(fractions) > 0.8
    pure_au = [a for a in alloys if set(a.get_chemical_symbols()) == {"Au"}]
    for a in pure_au:  # Vegard: the cell scales to gold's lattice constant
        assert a.cell.lengths()[0] / 2 > 4.0
