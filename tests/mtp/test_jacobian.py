"""Our vectorised energy jacobian against motep's own (train mode), real potentials."""

import numpy as np
import pytest
from ase.build import bulk
from ase.data import atomic_numbers

from autopot.mtp.generator import generate_untrained_mtp
from autopot.mtp.jacobian import MTPArrays, energy_jacobian
from autopot.mtp.mtpfile import read_mtp


@pytest.mark.parametrize("level, symbols", [(6, ["Cu"]), (10, ["Cu", "Ag"]), (16, ["Cu"])])
def test_matches_motep(tmp_path, level, symbols):
    from motep.calculator import MTP

    generate_untrained_mtp(level, len(symbols), cutoff=5.0, min_dist=2.0, path=tmp_path / "p.mtp")
    data = read_mtp(tmp_path / "p.mtp")
    data.initialize(np.random.default_rng(0))
    data.species = [atomic_numbers[s] for s in symbols]
    images = []
    for k, cell in enumerate(
        [bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2), bulk("Cu", "fcc", a=3.6)]
    ):  # a 1-atom cell: many images
        cell.rattle(0.1, seed=k)
        if len(symbols) > 1:
            cell.numbers[::3] = atomic_numbers[symbols[1]]
        images.append(cell)
    arr = MTPArrays.from_mtp(data, data.species)
    conf = energy_jacobian(arr, images)
    atom = energy_jacobian(arr, images, per_atom=True)
    off = 0
    for k, a in enumerate(images):
        a = a.copy()
        a.calc = MTP(data, engine="cext", mode="train")
        e = a.get_potential_energy()
        jac = a.calc.engine.jac_energy(a).parameters
        jacs = a.calc.engine.jac_energies(a).parameters.T
        assert conf.energies[k] == pytest.approx(e, rel=1e-12)
        assert np.allclose(conf.rows[k], jac, rtol=1e-10, atol=1e-12 * np.abs(jac).max())
        assert np.allclose(
            atom.rows[off : off + len(a)], jacs, rtol=1e-10, atol=1e-12 * np.abs(jacs).max()
        )
        off += len(a)


def test_cluster_without_cell_matches_motep(tmp_path):
    from ase.cluster import Icosahedron
    from motep.calculator import MTP

    generate_untrained_mtp(8, 1, cutoff=5.0, min_dist=2.0, path=tmp_path / "p.mtp")
    data = read_mtp(tmp_path / "p.mtp")
    data.initialize(np.random.default_rng(1))
    data.species = [29]
    atoms = Icosahedron("Cu", 2)
    atoms.rattle(0.05, seed=3)
    res = energy_jacobian(MTPArrays.from_mtp(data, data.species), [atoms])
    ref = atoms.copy()
    ref.calc = MTP(data, engine="cext", mode="train")
    assert res.energies[0] == pytest.approx(ref.get_potential_energy(), rel=1e-12)
    jac = ref.calc.engine.jac_energy(ref).parameters
    assert np.allclose(res.rows[0], jac, rtol=1e-10, atol=1e-12 * np.abs(jac).max())
