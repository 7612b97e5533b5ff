"""Candidate sampling: reproducible under a seed, within its bounds, inputs untouched."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from autopot.sampling import bulk_supercells, candidate_set, perturbed, random_alloys, strained


def same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x.positions, y.positions)
        and np.array_equal(x.cell.array, y.cell.array)
        and x.get_chemical_symbols() == y.get_chemical_symbols()
        for x, y in zip(a, b, strict=True)
    )


def test_reproducible_under_seed() -> None:
    a = candidate_set(n_per_size=4, seed=3)
    assert len(a) == 12 and {len(x) for x in a} == {4, 32, 48}
    assert same(a, candidate_set(n_per_size=4, seed=3))
    assert not same(a, candidate_set(n_per_size=4, seed=4))
    alloys = candidate_set(sizes=((2, 2, 2),), n_per_size=5, seed=1, species=("Cu", "Au"))
    assert same(
        alloys, candidate_set(sizes=((2, 2, 2),), n_per_size=5, seed=1, species=("Cu", "Au"))
    )
    assert any("Au" in x.get_chemical_symbols() for x in alloys)


def test_bulk_supercells() -> None:
    small, big = bulk_supercells("Cu", "fcc", a=3.6)
    assert (len(small), len(big)) == (32, 108)
    np.testing.assert_allclose(big.cell.lengths(), [10.8] * 3)


def test_strain_and_perturbation_bounds() -> None:
    rng = np.random.default_rng(0)
    (base,) = bulk_supercells("Cu", sizes=((2, 2, 2),))
    before = base.copy()
    eps_all = []
    for atoms in strained(base, max_strain=0.02, n=50, rng=rng):
        eps = np.linalg.solve(base.cell.array, atoms.cell.array) - np.eye(3)
        assert np.abs(eps).max() <= 0.02 + 1e-12 and np.allclose(eps, eps.T)
        # atoms move with the cell (homogeneous strain), fractional coordinates unchanged
        np.testing.assert_allclose(
            atoms.get_scaled_positions(wrap=False),
            base.get_scaled_positions(wrap=False),
            atol=1e-12,
        )
        eps_all.append(eps)
    assert np.abs(eps_all).max() > 0.015  # the bound is actually explored
    for atoms in perturbed(base, amplitude=(0.02, 0.05), n=5, rng=rng):
        d = np.linalg.norm(atoms.positions - base.positions, axis=1)
        assert d.min() >= 0.02 - 1e-12 and d.max() <= 0.05 + 1e-12
    assert base == before  # inputs are not modified


def test_dirichlet_alloys_cover_compositions() -> None:
    rng = np.random.default_rng(1)
    (base,) = bulk_supercells("Cu", sizes=((2, 2, 2),))
    alloys = random_alloys(base, ("Cu", "Au", "Ag"), n=40, rng=rng)
    counts = np.array(
        [[a.get_chemical_symbols().count(s) for s in ("Cu", "Au", "Ag")] for a in alloys]
    )
    assert (counts.sum(axis=1) == 32).all()  # rounded compositions keep the atom count
    fractions = counts / 32
    assert (
        fractions[:, 1].min() < 0.1 and fractions[:, 1].max() > 0.6
    )  # the simplex, not its centre
    assert len({tuple(c) for c in counts}) > 30
    binary = random_alloys(base, ("Cu", "Au"), n=30, rng=np.random.default_rng(2))
    for a in binary:  # Vegard: the lattice constant follows the composition
        x_au = a.get_chemical_symbols().count("Au") / 32
        assert a.cell.lengths()[0] / 2 == pytest.approx((1 - x_au) * 3.61 + x_au * 4.08)
    again = random_alloys(base, ("Cu", "Au"), n=30, rng=np.random.default_rng(2))
    assert same(binary, again)


def test_import_is_cheap() -> None:
    # task processes import this; ase and mlippykit (atomman, pandas...) must stay lazy
    code = "import sys, autopot.sampling; print(sorted(m for m in ('ase', 'mlippykit', 'scipy') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
