"""Reference calculators: EMT/EAM/import path for real, VASP input writing and the
reading of real recorded VASP outputs (../shared/data/vasp)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from autopot.errors import AutopotError
from autopot.reference import compute_single_point, make_calculator, read_vasp_result

VASP_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "vasp"


def cu32():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    atoms.rattle(0.05, seed=1)
    return atoms


def test_emt_single_point_matches_ase(tmp_path: Path) -> None:
    atoms = cu32()
    result = compute_single_point(atoms, {"calculator": "emt"}, tmp_path)
    ref = atoms.copy()
    ref.calc = EMT()
    assert result.get_potential_energy() == pytest.approx(ref.get_potential_energy())
    np.testing.assert_allclose(result.get_forces(), ref.get_forces())
    np.testing.assert_allclose(result.get_stress(), ref.get_stress())
    assert atoms.calc is None  # the input is not modified


def test_eam_from_a_real_potential_file(tmp_path: Path) -> None:
    from ase.calculators.eam import EAM

    # a small but real setfl (.eam.alloy) file: Finnis-Sinclair-like embedding, exponential density/pair
    n, d_rho, d_r, cutoff = 500, 0.02, 0.012, 5.988
    rho = np.arange(n) * d_rho
    r = np.arange(n) * d_r
    lines = ["test potential", "written by autopot tests", "", "1 Cu",
             f"{n} {d_rho} {n} {d_r} {cutoff}", "29 63.546 3.61 fcc"]
    lines += [f"{v:.10e}" for v in -np.sqrt(rho)]
    lines += [f"{v:.10e}" for v in np.exp(-1.5 * (r - 2.5))]
    lines += [f"{v:.10e}" for v in r * 0.3 * np.exp(-3.0 * (r - 2.5))]
    pot = tmp_path / "Cu.eam.alloy"
    pot.write_text("\n".join(lines) + "\n")
    result = compute_single_point(cu32(), {"calculator": "eam", "pot_fname": str(pot)}, tmp_path / "calc")
    ref = cu32()
    ref.calc = EAM(potential=str(pot))
    assert result.get_potential_energy() == pytest.approx(ref.get_potential_energy())
    assert result.get_forces().shape == (32, 3)


def test_calculator_by_import_path(tmp_path: Path) -> None:
    spec = {"calculator": "ase.calculators.lj:LennardJones", "kwargs": {"sigma": 2.3, "epsilon": 0.4}}
    result = compute_single_point(cu32(), spec, tmp_path)
    assert np.isfinite(result.get_potential_energy())


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"calculator": "nonsense"}, "calculator.calculator: unknown calculator 'nonsense'"),
        ({"calculator": "ase.calculators.nope:Calc"}, "calculator.calculator: cannot import calculator"),
        ({"calculator": "eam"}, "calculator.pot_fname: the eam calculator needs a file"),
        ({"calculator": "eam", "pot_fname": "/nonexistent/Cu.eam"}, "Cu.eam: calculator.pot_fname: file not found"),
        ({"calculator": "vasp", "pot_fname": "/nonexistent/INCAR"}, "INCAR: calculator.pot_fname: file not found"),
        ({"calculator": "emt", "kwargs": 3}, "calculator.kwargs: expected dict"),
    ],
)
def test_bad_specs(tmp_path: Path, spec: dict, needle: str) -> None:
    with pytest.raises(AutopotError) as err:
        make_calculator(spec, directory=tmp_path)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_vasp_input_written_from_incar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ASE looks POTCARs up under $VASP_PP_PATH; a placeholder file lets it write inputs
    # (VASP itself is never run here).
    pp = tmp_path / "pp" / "potpaw" / "Cu"
    pp.mkdir(parents=True)
    (pp / "POTCAR").write_text("  PAW Cu 05Jan2001\n  11.0000000000000\n")
    monkeypatch.setenv("VASP_PP_PATH", str(tmp_path / "pp"))
    incar = tmp_path / "INCAR.in"
    incar.write_text("ENCUT = 520\nISMEAR = 1\nSIGMA = 0.1\nEDIFF = 1e-6\n")
    run = tmp_path / "run"
    calc = make_calculator({"calculator": "vasp", "pot_fname": str(incar), "kpts": [3, 3, 3], "xc": "LDA"},
                           directory=run)
    run.mkdir()
    calc.write_input(cu32())
    written = (run / "INCAR").read_text().upper()
    assert "ENCUT = 520.0" in written and "ISMEAR = 1" in written and "EDIFF = 1.00E-06" in written
    assert "3 3 3" in (run / "KPOINTS").read_text()
    assert (run / "POSCAR").read_text().count("\n") >= 8 + 32 - 1


@pytest.mark.skipif(not VASP_DATA.is_dir(), reason=f"recorded VASP outputs not found at {VASP_DATA}")
def test_read_real_vasp_outputs(tmp_path: Path) -> None:
    expected = {"0000": -590.97331886, "0001": -590.25748496}
    for tag, energy in expected.items():
        run = tmp_path / tag
        run.mkdir()
        (run / "vasprun.xml").symlink_to(VASP_DATA / f"vasprun-AlN72-{tag}.xml")
        atoms = read_vasp_result(run)
        assert len(atoms) == 72
        assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-6)
        assert atoms.get_stress().shape == (6,)
        if tag == "0001":
            assert np.abs(atoms.get_forces()).max() == pytest.approx(1.076, abs=1e-3)


def test_vasp_not_finished_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AutopotError, match="no vasprun.xml or OUTCAR"):
        read_vasp_result(tmp_path)
