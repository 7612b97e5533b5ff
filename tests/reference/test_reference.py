"""Reference calculators: EMT/EAM/import path for real, VASP input writing and the
reading of real recorded VASP outputs (../shared/data/vasp)."""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from autopot.errors import AutopotError
from autopot.reference import compute_single_point, make_calculator, read_vasp_result

VASP_DATA = Path(__file__).resolve().parents[2].parent / "shared/data/vasp"
ASE_OUTCAR = Path(ase.__file__).parent / "test/testdata/vasp/OUTCAR_example_1"


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


def write_eam(path: Path) -> Path:
    """A small but real setfl (.eam.alloy) file: sqrt embedding, exponential density/pair."""
    n, d_rho, d_r, cutoff = 500, 0.02, 0.012, 5.988
    rho = np.arange(n) * d_rho
    r = np.arange(n) * d_r
    lines = [
        "test potential",
        "written by autopot tests",
        "",
        "1 Cu",
        f"{n} {d_rho} {n} {d_r} {cutoff}",
        "29 63.546 3.61 fcc",
    ]
    lines += [f"{v:.10e}" for v in -np.sqrt(rho)]
    lines += [f"{v:.10e}" for v in np.exp(-1.5 * (r - 2.5))]
    lines += [f"{v:.10e}" for v in r * 0.3 * np.exp(-3.0 * (r - 2.5))]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_eam_from_a_real_potential_file(tmp_path: Path) -> None:
    from ase.calculators.eam import EAM

    pot = write_eam(tmp_path / "Cu.eam.alloy")
    result = compute_single_point(
        cu32(), {"calculator": "eam", "potential": str(pot)}, tmp_path / "calc"
    )
    ref = cu32()
    ref.calc = EAM(potential=str(pot))
    assert result.get_potential_energy() == pytest.approx(ref.get_potential_energy())
    np.testing.assert_allclose(result.get_forces(), ref.get_forces())
    np.testing.assert_allclose(result.get_stress(), ref.get_stress())
    assert np.abs(result.get_forces()).max() > 1e-3  # rattled: a non-trivial check
    # the paper's pot_fname (what sp_calc fills in) names the same file
    again = compute_single_point(
        cu32(), {"calculator": "eam", "pot_fname": str(pot)}, tmp_path / "calc2"
    )
    assert again.get_potential_energy() == result.get_potential_energy()


def test_calculator_failure_carries_its_cause(tmp_path: Path) -> None:
    pot = write_eam(tmp_path / "Cu.eam.alloy")
    gold = bulk("Au", "fcc", a=4.08, cubic=True)  # not in the Cu-only potential
    with pytest.raises(AutopotError, match="eam calculation failed: .*Au") as err:
        compute_single_point(gold, {"calculator": "eam", "potential": str(pot)}, tmp_path / "calc")
    assert err.value.__cause__ is not None and "\n" not in str(err.value)


def test_conflicting_files_are_refused(tmp_path: Path) -> None:
    a = write_eam(tmp_path / "a.eam.alloy")
    b = tmp_path / "b.eam.alloy"
    b.write_text(a.read_text().replace("-1.5", "-1.4"))
    with pytest.raises(
        AutopotError, match="calculator.potential: differs from calculator.pot_fname"
    ):
        make_calculator(
            {"calculator": "eam", "potential": str(a), "pot_fname": str(b)}, directory=tmp_path
        )


def test_calculator_by_import_path(tmp_path: Path) -> None:
    from ase.calculators.lj import LennardJones

    spec = {
        "calculator": "ase.calculators.lj:LennardJones",
        "kwargs": {"sigma": 2.3, "epsilon": 0.4},
    }
    result = compute_single_point(cu32(), spec, tmp_path)
    ref = cu32()
    ref.calc = LennardJones(sigma=2.3, epsilon=0.4)
    assert result.get_potential_energy() == pytest.approx(ref.get_potential_energy())
    np.testing.assert_allclose(result.get_forces(), ref.get_forces())
    dotted = compute_single_point(
        cu32(), {**spec, "calculator": "ase.calculators.lj.LennardJones"}, tmp_path
    )
    assert dotted.get_potential_energy() == result.get_potential_energy()


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"calculator": "nonsense"}, "calculator.calculator: unknown calculator 'nonsense'"),
        (
            {"calculator": "ase.calculators.nope:Calc"},
            "calculator.calculator: cannot import calculator",
        ),
        ({"calculator": "eam"}, "calculator.potential: the eam calculator needs a file"),
        (
            {"calculator": "eam", "pot_fname": "/nonexistent/Cu.eam"},
            "Cu.eam: calculator.pot_fname: file not found",
        ),
        (
            {"calculator": "vasp", "pot_fname": "/nonexistent/INCAR"},
            "INCAR: calculator.pot_fname: file not found",
        ),
        ({"calculator": "emt", "kwargs": 3}, "calculator.kwargs: expected dict"),
        ({"calculator": "emt", "kwargs": {"nope": 1}}, "calculator.kwargs: bad arguments for emt"),
        ({"calculator": "emt", "potental": "x"}, "calculator.potental: unknown setting for emt"),
        ({"calculator": "vasp"}, "calculator.incar: the vasp calculator needs a file"),
        (
            {"calculator": "vasp", "incar": "/nonexistent/INCAR"},
            "INCAR: calculator.incar: file not found",
        ),
        ({"calculator": "os.path:sep"}, "calculator.calculator: 'os.path:sep' is not a class"),
        ({}, "calculator.calculator: missing calculator name"),
    ],
)
def test_bad_specs(tmp_path: Path, spec: dict, needle: str) -> None:
    with pytest.raises(AutopotError) as err:
        make_calculator(spec, directory=tmp_path)
    assert needle in str(err.value) and "\n" not in str(err.value)


def fake_potcar_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *elements: str) -> None:
    """ASE looks POTCARs up under $VASP_PP_PATH to write inputs. These placeholders carry
    only the header lines ASE parses; they are not pseudopotentials and VASP never runs."""
    for element in elements:
        pp = tmp_path / "pp" / "potpaw" / element
        pp.mkdir(parents=True)
        (pp / "POTCAR").write_text(f"  PAW {element} 05Jan2001\n  11.0000000000000\n")
    monkeypatch.setenv("VASP_PP_PATH", str(tmp_path / "pp"))


def test_vasp_input_written_from_incar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_potcar_dir(tmp_path, monkeypatch, "Cu")
    incar = tmp_path / "INCAR.in"
    incar.write_text(
        "ENCUT = 520\nISMEAR = 1  # Methfessel-Paxton\nSIGMA = 0.1\nEDIFF = 1e-6\n"
        "LWAVE = .FALSE.\nMAGMOM = 32*0.5\n"
    )
    run = tmp_path / "run"
    spec = {
        "calculator": "vasp",
        "incar": str(incar),
        "kpts": [3, 3, 3],
        "xc": "LDA",
        "sigma": 0.05,
    }
    calc = make_calculator(spec, directory=run)
    run.mkdir()
    calc.write_input(cu32())  # ASE's input-writing path; nothing is executed
    written = (run / "INCAR").read_text().upper()
    for tag in (
        "ENCUT = 520.0",
        "ISMEAR = 1",
        "EDIFF = 1.00E-06",
        "LWAVE = .FALSE.",
        "MAGMOM = 32*0.5",
    ):
        assert tag in written, tag
    assert "SIGMA = 0.05" in written  # the run space's setting wins over the file's 0.1
    assert "3 3 3" in (run / "KPOINTS").read_text()
    poscar = (run / "POSCAR").read_text().splitlines()
    assert "32" in poscar[6].split() and len(poscar) >= 8 + 32
    assert not (run / "OUTCAR").exists() and not (run / "vasprun.xml").exists()


def test_vasp_kspacing_and_bad_incar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_potcar_dir(tmp_path, monkeypatch, "Cu")
    incar = tmp_path / "INCAR"
    incar.write_text("ENCUT = 400\n")
    run = tmp_path / "run"
    run.mkdir()
    make_calculator(
        {"calculator": "vasp", "pot_fname": str(incar), "kspacing": 0.25, "xc": "LDA"},
        directory=run,
    ).write_input(cu32())
    assert "KSPACING = 0.250000" in (run / "INCAR").read_text().upper()
    incar.write_text("ENCUT = 400; ISMEAR = 0\n")
    with pytest.raises(AutopotError, match=r"INCAR: calculator.pot_fname: line 1: several tags"):
        make_calculator({"calculator": "vasp", "pot_fname": str(incar)}, directory=run)
    incar.write_text("ENCUT =\n")
    with pytest.raises(AutopotError, match=r"INCAR: calculator.incar: cannot read INCAR"):
        make_calculator({"calculator": "vasp", "incar": str(incar)}, directory=run)


@pytest.mark.skipif(
    not VASP_DATA.is_dir(), reason=f"recorded VASP outputs not found at {VASP_DATA}"
)
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


@pytest.mark.skipif(
    not VASP_DATA.is_dir(), reason=f"recorded VASP outputs not found at {VASP_DATA}"
)
def test_read_vasp_restores_ase_input_order(tmp_path: Path) -> None:
    # the order ase-sort.dat records when ASE groups species for VASP; here a permutation
    # applied to the real output, to check it is undone for atoms and forces alike
    (tmp_path / "vasprun.xml").symlink_to(VASP_DATA / "vasprun-AlN72-0001.xml")
    plain = read_vasp_result(tmp_path)
    resort = np.random.default_rng(0).permutation(72)
    sort = np.argsort(resort)
    (tmp_path / "ase-sort.dat").write_text(
        "".join(f"{s} {r}\n" for s, r in zip(sort, resort, strict=True))
    )
    restored = read_vasp_result(tmp_path)
    np.testing.assert_array_equal(restored.positions, plain.positions[resort])
    np.testing.assert_array_equal(restored.get_forces(), plain.get_forces()[resort])
    assert restored.get_potential_energy() == plain.get_potential_energy()


@pytest.mark.skipif(
    not ASE_OUTCAR.is_file(), reason=f"ase's recorded OUTCAR test data not found at {ASE_OUTCAR}"
)
def test_read_real_outcar_when_no_vasprun(tmp_path: Path) -> None:
    # VASP 5.3.3, 18 Ni atoms, shipped with ase's own tests (ase/test/fio/vasp/test_vasp_out.py)
    (tmp_path / "OUTCAR").symlink_to(ASE_OUTCAR)
    atoms = read_vasp_result(tmp_path)
    assert len(atoms) == 18 and set(atoms.get_chemical_symbols()) == {"Ni"}
    assert atoms.get_potential_energy() == pytest.approx(-68.23102426, abs=1e-6)
    assert atoms.get_stress().shape == (6,)


def test_vasp_not_finished_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AutopotError, match="no vasprun.xml or OUTCAR"):
        read_vasp_result(tmp_path)
    (tmp_path / "vasprun.xml").write_text("<?xml version='1.0'?>\n<modeling>\n")  # killed mid-write
    with pytest.raises(AutopotError, match="vasprun.xml: cannot read VASP output"):
        read_vasp_result(tmp_path)
