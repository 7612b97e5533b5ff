"""The grading neighbour list (vesin when installed) equals matscipy's, pair for pair."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from matscipy.neighbours import neighbour_list

from autopot.mtp import jacobian


def _sorted_pairs(i, j, d):
    order = np.lexsort((d[:, 2], d[:, 1], d[:, 0], j, i))
    return i[order], j[order], d[order]


@pytest.mark.parametrize(
    "atoms",
    [
        bulk("Cu", "fcc", a=3.61).repeat((3, 3, 6)),
        bulk("Cu", "fcc", a=3.61, cubic=True),  # cell smaller than twice the cutoff
        Atoms(
            "Cu4",
            positions=np.random.default_rng(1).uniform(0, 6, (4, 3)),
            cell=[8, 8, 30],
            pbc=[True, True, False],
        ),
        molecule("CH4"),
    ],
    ids=["skewed", "small", "slab", "molecule"],
)
def test_pairs_equal_matscipy(atoms):
    atoms = atoms.copy()
    atoms.rattle(0.05, seed=3)
    i, j, d = jacobian._pairs(atoms, 5.0)
    assert np.all(np.diff(i) >= 0)  # grouped by central atom
    ref_atoms = atoms
    if atoms.cell.rank < 3 and not any(atoms.pbc):
        ref_atoms = atoms.copy()
        ref_atoms.set_cell(np.diag(np.ptp(atoms.positions, axis=0) + 11.0))
    ri, rj, rd = neighbour_list("ijD", ref_atoms, 5.0)
    a, b = _sorted_pairs(i, j, d), _sorted_pairs(ri, rj, rd)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.allclose(a[2], b[2], atol=1e-12)
