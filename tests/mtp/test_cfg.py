import numpy as np
import pytest
from ase import Atoms

from autopot.errors import MTPError
from autopot.mtp.cfg import read_cfg, write_cfg

from .conftest import emt_configs


def test_roundtrip_keeps_efs_and_features(tmp_path):
    images = emt_configs(3, seed=1)
    images[0].info["MV_grade"] = 3.5
    images[1].info["EFS_by"] = "EMT"
    write_cfg(tmp_path / "a.cfg", images, "Cu=0")
    back = read_cfg(tmp_path / "a.cfg", {"Cu": 0})
    assert len(back) == 3
    for a, b in zip(images, back, strict=True):
        assert np.allclose(a.positions, b.positions, atol=1e-9)
        assert np.allclose(a.cell, b.cell, atol=1e-9)
        assert b.get_potential_energy() == pytest.approx(a.get_potential_energy(), abs=1e-9)
        assert np.allclose(a.get_forces(), b.get_forces(), atol=1e-9)
        assert np.allclose(a.get_stress(), b.get_stress(), atol=1e-9)
    assert back[0].info["MV_grade"] == 3.5
    assert back[1].info["EFS_by"] == "EMT"


def test_two_species_and_cluster(tmp_path):
    a = Atoms("MoTaMo", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0]])
    write_cfg(tmp_path / "c.cfg", [a], "Mo=0,Ta=1")
    text = (tmp_path / "c.cfg").read_text()
    assert "Supercell" not in text
    (b,) = read_cfg(tmp_path / "c.cfg", "Mo=0,Ta=1")
    assert b.get_chemical_symbols() == ["Mo", "Ta", "Mo"] and not b.pbc.any()


def test_unmapped_element_writes_nothing(tmp_path):
    images = emt_configs(1, seed=2)
    images[0].numbers[0] = 79  # Au
    with pytest.raises(MTPError, match="contains Au") as exc:
        write_cfg(tmp_path / "x.cfg", images, "Cu=0")
    assert "x.cfg" in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_untouched_on_error(tmp_path):
    good = emt_configs(1, seed=3)
    write_cfg(tmp_path / "x.cfg", good, "Cu=0")
    before = (tmp_path / "x.cfg").read_text()
    bad = [Atoms("Au", positions=[[0, 0, 0]])]
    with pytest.raises(MTPError):
        write_cfg(tmp_path / "x.cfg", bad, "Cu=0")
    assert (tmp_path / "x.cfg").read_text() == before
    assert len(list(tmp_path.iterdir())) == 1


GOOD = """BEGIN_CFG
 Size
    2
 Supercell
   3.0 0.0 0.0
   0.0 3.0 0.0
   0.0 0.0 3.0
 AtomData:  id type cartes_x cartes_y cartes_z fx fy fz
    1 0 0.0 0.0 0.0 0.1 0.0 0.0
    2 1 1.5 1.5 1.5 -0.1 0.0 0.0
 Energy
   -7.5
 PlusStress:  xx yy zz yz xz xy
   1.0 1.0 1.0 0.0 0.0 0.0
 Feature   MV_grade 2.25
END_CFG
"""


def test_reads_mlip2_text(tmp_path):
    (tmp_path / "g.cfg").write_text(GOOD)
    (a,) = read_cfg(tmp_path / "g.cfg", "Mo=0,Ta=1")
    assert a.get_chemical_symbols() == ["Mo", "Ta"]
    assert a.get_potential_energy() == -7.5
    assert a.get_stress()[0] == pytest.approx(-1.0 / 27.0)
    assert a.info["MV_grade"] == 2.25


@pytest.mark.parametrize(
    "old, new, line, words",
    [
        ("    2\n", "    two\n", 3, "Size"),
        (
            "    2 1 1.5 1.5 1.5 -0.1 0.0 0.0",
            "    2 1 1.5 1.5 -0.1 0.0 0.0",
            10,
            "expected 8 columns",
        ),
        ("   -7.5", "   -7.5eV", 12, "Energy"),
        ("0.0 0.0 3.0", "0.0 3.0", 7, "Supercell"),
        (" Energy", " Enrgy", 11, "unknown section"),
        ("END_CFG\n", "", 1, "END_CFG missing"),
    ],
)
def test_malformed_cfg_names_the_line(tmp_path, old, new, line, words):
    (tmp_path / "bad.cfg").write_text(GOOD.replace(old, new))
    with pytest.raises(MTPError, match=words) as exc:
        read_cfg(tmp_path / "bad.cfg", "Mo=0,Ta=1")
    msg = str(exc.value)
    assert "\n" not in msg and "bad.cfg" in msg and f"line {line}" in msg


def test_type_missing_from_mapping(tmp_path):
    (tmp_path / "g.cfg").write_text(GOOD)
    with pytest.raises(MTPError, match=r"type 1 .* not in atom_types Mo=0") as exc:
        read_cfg(tmp_path / "g.cfg", "Mo=0")
    assert "g.cfg: line 1" in str(exc.value)
