import numpy as np
import pytest

from autopot.errors import MTPError
from autopot.mtp.generator import generate_untrained_mtp
from autopot.mtp.mtpfile import read_mtp, write_mtp


def test_trained_roundtrip(tmp_path):
    generate_untrained_mtp(8, 2, path=tmp_path / "u.mtp")
    data = read_mtp(tmp_path / "u.mtp")
    data.initialize(np.random.default_rng(1))
    write_mtp(tmp_path / "t.mtp", data)
    back = read_mtp(tmp_path / "t.mtp")
    assert np.allclose(back.radial_coeffs, data.radial_coeffs, rtol=1e-14)
    assert np.allclose(back.moment_coeffs, data.moment_coeffs, rtol=1e-14)
    assert np.allclose(back.species_coeffs, data.species_coeffs, rtol=1e-14)
    from motep.io.mlip.mtp import read_mtp as motep_read  # and motep reads what we write

    assert np.allclose(motep_read(tmp_path / "t.mtp").radial_coeffs, data.radial_coeffs)


def _lines(tmp_path):
    generate_untrained_mtp(6, 1, path=tmp_path / "u.mtp")
    return (tmp_path / "u.mtp").read_text().splitlines()


@pytest.mark.parametrize(
    "lineno, new, words",
    [
        (1, "MTPX", "first line"),
        (4, "species_count = one", "species_count"),
        (7, "\tmin_dist = abc", "min_dist"),
        (13, "alpha_index_basic = {{0, 0, 0}}", "4 integers"),
        (15, "alpha_index_times = {{0, 0, 1, 99}}", "alpha_index_times"),
        (17, "alpha_moment_mapping = {0, 1}", "alpha_moment_mapping has 2"),
        (3, "what is this", "key = value"),
    ],
)
def test_malformed_mtp_names_the_line(tmp_path, lineno, new, words):
    lines = _lines(tmp_path)
    lines[lineno - 1] = new
    (tmp_path / "bad.mtp").write_text("\n".join(lines) + "\n")
    with pytest.raises(MTPError, match=words) as exc:
        read_mtp(tmp_path / "bad.mtp")
    msg = str(exc.value)
    assert "\n" not in msg and "bad.mtp" in msg
    if words not in ("alpha_index_times",):
        assert f"line {lineno}" in msg


def test_missing_key_and_missing_file(tmp_path):
    lines = [ln for ln in _lines(tmp_path) if not ln.startswith("alpha_moment_mapping")]
    (tmp_path / "bad.mtp").write_text("\n".join(lines))
    with pytest.raises(MTPError, match="alpha_moment_mapping missing"):
        read_mtp(tmp_path / "bad.mtp")
    with pytest.raises(MTPError, match="cannot read"):
        read_mtp(tmp_path / "nope.mtp")
