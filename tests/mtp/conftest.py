"""Shared fixtures: real EMT Cu data and a real (motep-trained) level-06 MTP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from autopot.mtp import generate_untrained_mtp, get_backend

ATOM_TYPES = {"Cu": 0}


def emt_configs(
    n: int,
    seed: int,
    *,
    rattle: float = 0.05,
    strain: float = 0.02,
    size: tuple[int, int, int] = (2, 2, 2),
    scale: float = 1.0,
) -> list:
    """fcc Cu cells, randomly strained and rattled, labelled by EMT."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(size)
        eps = rng.uniform(-strain, strain, (3, 3))
        a.set_cell(a.cell @ (np.eye(3) + (eps + eps.T) / 2) * scale, scale_atoms=True)
        a.positions += rng.normal(0.0, rattle, a.positions.shape)
        a.calc = EMT()
        res = {
            "energy": a.get_potential_energy(),
            "forces": a.get_forces(),
            "stress": a.get_stress(),
        }
        a.calc = SinglePointCalculator(a, **res)
        out.append(a)
    return out


@pytest.fixture(scope="session")
def training_set() -> list:
    return emt_configs(24, seed=0)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, training_set) -> Path:
    """A level-06 MTP trained by the motep backend (with its active set saved)."""
    d = tmp_path_factory.mktemp("pot")
    generate_untrained_mtp(6, 1, cutoff=5.0, min_dist=2.0, path=d / "06.mtp")
    res = get_backend("motep").train(
        d / "06.mtp",
        training_set,
        d / "trained.mtp",
        atom_types=ATOM_TYPES,
        max_iter=150,
        workdir=d / "run",
    )
    return res.potential
