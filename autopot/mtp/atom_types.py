"""The ``atom_types`` mapping between chemical symbols and MLIP-2 type indices.

MLIP-2 .cfg files store integer types only; the mapping (``Mo=0,Ta=1``) is how a user says
which element each type is.  Every reader/writer in :mod:`autopot.mtp` goes through here so
that a wrong mapping is reported once, clearly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autopot.errors import MTPError

FIELD = "atom_types"


def parse_atom_types(spec: str | Mapping[str, int], *, file: str | None = None) -> dict[str, int]:
    """Parse ``"Mo=0,Ta=1"`` (or a dict) into ``{"Mo": 0, "Ta": 1}``.

    Symbols must be chemical elements, types non-negative integers, and both unique.
    """
    from ase.data import chemical_symbols

    items: list[tuple[str, Any]] = []
    if isinstance(spec, Mapping):
        items = [(str(k), v) for k, v in spec.items()]
    elif isinstance(spec, str):
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            if part.count("=") != 1:
                raise MTPError(f"expected Symbol=type, got {part!r}", file=file, field=FIELD)
            sym, _, text = part.partition("=")
            items.append((sym.strip(), text.strip()))
    else:
        raise MTPError(
            f"expected 'Mo=0,Ta=1' or a dict, got {type(spec).__name__}", file=file, field=FIELD
        )
    if not items:
        raise MTPError("empty mapping; expected e.g. 'Cu=0'", file=file, field=FIELD)
    out: dict[str, int] = {}
    for sym, val in items:
        if sym not in chemical_symbols[1:]:
            raise MTPError(f"{sym!r} is not a chemical symbol", file=file, field=FIELD)
        try:
            t = int(val)
        except (TypeError, ValueError):
            raise MTPError(
                f"type of {sym} must be an integer, got {val!r}", file=file, field=FIELD
            ) from None
        if isinstance(val, float) and val != t or t < 0:
            raise MTPError(
                f"type of {sym} must be a non-negative integer, got {val!r}", file=file, field=FIELD
            )
        if sym in out:
            raise MTPError(f"symbol {sym} given twice", file=file, field=FIELD)
        if t in out.values():
            raise MTPError(f"type {t} given twice", file=file, field=FIELD)
        out[sym] = t
    return out


def type_to_number(atom_types: Mapping[str, int]) -> dict[int, int]:
    """``{type: atomic number}`` for reading .cfg files."""
    from ase.data import atomic_numbers

    return {t: atomic_numbers[s] for s, t in atom_types.items()}


def number_to_type(atom_types: Mapping[str, int]) -> dict[int, int]:
    """``{atomic number: type}`` for writing .cfg files."""
    from ase.data import atomic_numbers

    return {atomic_numbers[s]: t for s, t in atom_types.items()}


def species_list(
    atom_types: Mapping[str, int], species_count: int, *, file: str | None = None
) -> list[int]:
    """Atomic numbers indexed by MTP type, as motep's ``MTPData.species`` wants them.

    Types of the potential that the mapping does not name get placeholder numbers that no
    real atom has (negative), so they can never match; a mapped type beyond the potential's
    ``species_count`` is a species mismatch.
    """
    t2n = type_to_number(atom_types)
    too_big = sorted(t for t in t2n if t >= species_count)
    if too_big:
        sym = [s for s, t in atom_types.items() if t == too_big[0]][0]
        raise MTPError(
            f"{sym}={too_big[0]} but the potential has species_count = "
            f"{species_count} (types 0..{species_count - 1})",
            file=file,
            field=FIELD,
        )
    return [t2n.get(t, -1 - t) for t in range(species_count)]
