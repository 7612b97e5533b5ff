import pytest

from autopot.errors import MTPError
from autopot.mtp.atom_types import parse_atom_types, species_list


def test_parse_string_and_dict():
    assert parse_atom_types("Mo=0,Ta=1") == {"Mo": 0, "Ta": 1}
    assert parse_atom_types(" Mo = 0 , Ta=1 ,") == {"Mo": 0, "Ta": 1}
    assert parse_atom_types({"Cu": 0}) == {"Cu": 0}


@pytest.mark.parametrize(
    "spec, words",
    [
        ("Mo=0,Mo=1", "given twice"),
        ("Mo=0,Ta=0", "type 0 given twice"),
        ("Mo:0", "Symbol=type"),
        ("Xx=0", "not a chemical symbol"),
        ("Mo=a", "integer"),
        ("Mo=-1", "non-negative"),
        ("", "empty"),
    ],
)
def test_bad_mappings_are_one_line_errors(spec, words):
    with pytest.raises(MTPError, match=words) as exc:
        parse_atom_types(spec)
    assert "\n" not in str(exc.value) and "atom_types" in str(exc.value)


def test_species_list_rejects_types_beyond_potential():
    assert species_list({"Cu": 0}, 2) == [29, -2]
    with pytest.raises(MTPError, match="species_count = 1"):
        species_list({"Mo": 0, "Ta": 1}, 1, file="pot.mtp")
