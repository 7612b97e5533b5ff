import numpy as np
import pytest

from autopot.errors import MTPError
from autopot.mtp.activeset import ActiveSet, MaxVol


def test_maxvol_keeps_inverse_exact_and_bounds_pool():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(60, 8))
    mv = MaxVol.start(8)
    swaps = mv.maximize(rows, np.arange(60), threshold=1.0000001)
    assert swaps >= 8
    assert np.allclose(mv.ainv, np.linalg.inv(mv.a), atol=1e-8)
    assert np.all(mv.owner >= 0)  # every eps row replaced
    assert np.allclose(mv.a, rows[mv.owner])
    assert np.abs(rows @ mv.ainv).max() <= 1.0000001 + 1e-9


def test_maxvol_with_fewer_rows_than_parameters_stays_regular():
    rows = np.random.default_rng(1).normal(size=(3, 8))
    mv = MaxVol.start(8)
    mv.maximize(rows, np.arange(3), threshold=1.0000001)
    assert sorted(mv.owner[mv.owner >= 0]) == [0, 1, 2]
    assert np.isfinite(mv.ainv).all()
    # rows of the training set grade 1; a direction outside their span grades ~1/eps
    assert np.abs(rows @ mv.ainv).max() == pytest.approx(1.0)
    outside = np.linalg.svd(rows)[2][-1]
    assert np.abs(outside @ mv.ainv).max() > 1e3


def test_swap_limit():
    rows = np.random.default_rng(2).normal(size=(30, 5))
    mv = MaxVol.start(5)
    assert mv.maximize(rows, np.arange(30), threshold=1.0000001, swap_limit=2) == 2


def test_save_load_roundtrip(tmp_path):
    mv = MaxVol.start(4)
    mv.maximize(np.random.default_rng(3).normal(size=(10, 4)), np.arange(10), threshold=1.0000001)
    als = ActiveSet(
        maxvol=mv, mode="neighborhood", pot_sha256="abc", training_fingerprint="def", n_training=10
    )
    als.save(tmp_path / "p.mtp.als.npz")
    back = ActiveSet.load(tmp_path / "p.mtp.als.npz")
    assert back.mode == "neighborhood" and back.pot_sha256 == "abc" and back.n_training == 10
    assert np.array_equal(back.maxvol.ainv, mv.ainv)
    assert np.array_equal(back.maxvol.owner, mv.owner)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(MTPError, match="junk.npz"):
        ActiveSet.load(tmp_path / "junk.npz")
