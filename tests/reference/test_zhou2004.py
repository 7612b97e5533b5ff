"""The Zhou 2004 EAM tables reproduce the published bcc metals, through sp_calc's calculator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from autopot.errors import AutopotError
from autopot.reference.calculators import make_calculator
from autopot.reference.zhou2004 import write_setfl

# experiment (Kittel): lattice constant (A), cohesive energy (eV/atom); Zhou et al. fitted
# their parameters to these, so the tables must land close to them
BCC = {"W": (3.165, 8.90), "Mo": (3.147, 6.82), "Ta": (3.303, 8.10)}


def _energy_per_atom(symbol: str, a: float, calc) -> float:
    atoms = bulk(symbol, "bcc", a=a, cubic=True)
    atoms.calc = calc
    return atoms.get_potential_energy() / len(atoms)


@pytest.mark.parametrize("symbol", sorted(BCC))
def test_bcc_lattice_constant_and_cohesive_energy(tmp_path: Path, symbol: str) -> None:
    a_exp, ec_exp = BCC[symbol]
    pot = write_setfl([symbol], tmp_path / f"{symbol}.eam.alloy")
    calc = make_calculator({"calculator": "eam", "potential": str(pot)}, directory=tmp_path)
    grid = np.linspace(0.97 * a_exp, 1.03 * a_exp, 9)
    energies = [_energy_per_atom(symbol, a, calc) for a in grid]
    c2, c1, _ = np.polyfit(grid, energies, 2)
    a0 = -c1 / (2 * c2)
    assert c2 > 0  # a minimum, not a maximum
    assert abs(a0 - a_exp) / a_exp < 0.005
    assert abs(-min(energies) - ec_exp) / ec_exp < 0.03
    # bcc must be stable against fcc at equal volume per atom (the Bain path's end)
    fcc = bulk(symbol, "fcc", a=a0 * 2 ** (1 / 3), cubic=True)
    fcc.calc = calc
    assert fcc.get_potential_energy() / len(fcc) > min(energies)


def test_alloy_file_agrees_with_element_files_and_element_order(tmp_path: Path) -> None:
    def calc(*symbols: str):
        pot = write_setfl(list(symbols), tmp_path / f"{''.join(symbols)}.eam.alloy")
        return make_calculator({"calculator": "eam", "potential": str(pot)}, directory=tmp_path)

    def energy(atoms, calculator) -> float:
        atoms = atoms.copy()
        atoms.calc = calculator
        return atoms.get_potential_energy()

    pure = bulk("Mo", "bcc", a=3.15, cubic=True).repeat(2)
    pure.rattle(0.05, seed=1)
    # the alloy file's Mo-Mo part is the Mo file's (same cutoff: Ta's lattice is larger,
    # so compare in a cell whose Mo-Mo pairs all lie inside both cutoffs' tables)
    assert energy(pure, calc("Mo", "Ta")) == pytest.approx(energy(pure, calc("Mo")), rel=1e-4)
    alloy = pure.copy()
    alloy.symbols[[0, 3, 4, 9, 13]] = "Ta"
    e_mota, e_tamo = energy(alloy, calc("Mo", "Ta")), energy(alloy, calc("Ta", "Mo"))
    assert e_mota == pytest.approx(e_tamo, rel=1e-6)  # the cross pair is symmetric
    assert e_mota != pytest.approx(energy(pure, calc("Mo", "Ta")), rel=1e-3)  # Ta counts
    forces = alloy.copy()
    forces.calc = calc("Mo", "Ta")
    assert np.isfinite(forces.get_forces()).all()


def test_unknown_element_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AutopotError, match="no Zhou 2004 parameters for \\['Xx'\\]"):
        write_setfl(["W", "Xx"], tmp_path / "bad.eam.alloy")
    assert not (tmp_path / "bad.eam.alloy").exists()
