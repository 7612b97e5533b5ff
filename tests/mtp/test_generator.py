import pytest

from autopot.errors import MTPError
from autopot.mtp.generator import build_mtp_arrays, generate_untrained_mtp
from autopot.mtp.mtpfile import read_mtp


@pytest.mark.parametrize("level, scalars, radial", [(6, 5, 2), (8, 9, 2), (10, 16, 3), (16, 92, 4)])
def test_published_basis_counts(level, scalars, radial):
    arr = build_mtp_arrays(level)
    assert len(arr["alpha_moment_mapping"]) == scalars
    assert arr["radial_funcs_count"] == radial


def test_level06_is_mlip2s_template():
    arr = build_mtp_arrays(6)
    assert arr["alpha_moments_count"] == 8
    assert sorted(map(tuple, arr["alpha_index_basic"])) == [
        (0, 0, 0, 0),
        (0, 0, 0, 1),
        (0, 0, 1, 0),
        (0, 1, 0, 0),
        (1, 0, 0, 0),
    ]


def test_file_is_readable_by_us_and_motep(tmp_path):
    from motep.io.mlip.mtp import read_mtp as motep_read

    generate_untrained_mtp(
        10, 2, cutoff=4.5, min_dist=1.9, radial_basis_size=10, path=tmp_path / "10.mtp"
    )
    ours = read_mtp(tmp_path / "10.mtp")
    theirs = motep_read(tmp_path / "10.mtp")
    assert ours.species_count == theirs.species_count == 2
    assert ours.alpha_scalar_moments == theirs.alpha_scalar_moments == 16
    assert ours.radial_basis.size == theirs.radial_basis.size == 10
    assert ours.radial_basis.max == 4.5
    assert (ours.alpha_index_times == theirs.alpha_index_times).all()


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"level": 7, "species_count": 1}, "level"),
        ({"level": 30, "species_count": 1}, "level"),
        ({"level": 8, "species_count": 0}, "species_count"),
        ({"level": 8, "species_count": 1, "cutoff": 1.0}, "cutoff"),
        ({"level": 8, "species_count": 1, "radial_basis_size": 1}, "radial_basis_size"),
    ],
)
def test_bad_arguments(kwargs, field, tmp_path):
    with pytest.raises(MTPError, match=field):
        generate_untrained_mtp(**kwargs, path=tmp_path / "x.mtp")
    assert not (tmp_path / "x.mtp").exists()
