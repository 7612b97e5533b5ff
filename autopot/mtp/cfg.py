"""MLIP-2 ``.cfg`` reading and writing, with errors that name the line.

Our own parser (not motep's): motep's reader raises bare ``ValueError``/``RuntimeError``
on malformed input, and users need ``train.cfg: line 412: ...`` to fix a file by hand.
Writes are atomic (temporary file + rename) so a failure never leaves half a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from autopot.atomic import atomic_write_text
from autopot.errors import MTPError

from .atom_types import number_to_type, parse_atom_types, type_to_number

_VOIGT = ["xx", "yy", "zz", "yz", "xz", "xy"]
_CART = ["cartes_x", "cartes_y", "cartes_z"]
_DIRECT = ["direct_x", "direct_y", "direct_z"]


def _num(text: str, path: str, lineno: int, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise MTPError(
            f"{what}: not a number: {text!r}", file=path, field=f"line {lineno}"
        ) from None


def _feature_value(text: str) -> int | float | str:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_cfg(path: str | Path, atom_types: str | Mapping[str, int]) -> list:
    """Read every configuration of an MLIP-2 .cfg file into ASE ``Atoms``.

    Energy, forces and stress (ASE sign convention, eV/A^3) are attached with a
    ``SinglePointCalculator``; ``Feature`` lines go to ``atoms.info`` (``MV_grade`` as a
    float), extra per-atom columns (e.g. ``nbh_grades``) to ``atoms.arrays``.
    """
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    path = str(path)
    types = parse_atom_types(atom_types)
    t2n = type_to_number(types)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise MTPError(f"cannot read: {exc.strerror}", file=path) from None
    except UnicodeDecodeError:
        raise MTPError("not a text file (an MLIP-2 .cfg is UTF-8/ASCII text)", file=path) from None

    images: list[Atoms] = []
    n = len(lines)
    k = 0

    def err(msg: str, lineno: int) -> MTPError:
        return MTPError(msg, file=path, field=f"line {lineno}")

    while k < n:
        line = lines[k].strip()
        k += 1
        if not line:
            continue
        if line != "BEGIN_CFG":
            raise err(f"expected BEGIN_CFG, got {line[:40]!r}", k)
        begin = k
        size = None
        cell = None
        energy = None
        stress = None
        info: dict = {}
        atomdata: dict[str, np.ndarray] | None = None
        while True:
            if k >= n:
                raise err("END_CFG missing for configuration starting here", begin)
            line = lines[k].strip()
            k += 1
            if not line:
                continue
            word = line.split()[0]
            if word == "END_CFG":
                break
            if word == "Size":
                if k >= n:
                    raise err("Size: value missing", k)
                tok = lines[k].split()
                k += 1
                if len(tok) != 1 or not tok[0].isdigit() or int(tok[0]) < 1:
                    raise err(f"Size: expected a positive integer, got {lines[k - 1].strip()!r}", k)
                size = int(tok[0])
            elif word in ("Supercell", "SuperCell"):
                rows: list[list[float]] = []
                # 1 to 3 lattice vectors; MLIP-2 writes 3 for bulk
                while k < n and len(rows) < 3:
                    tok = lines[k].split()
                    if len(tok) != 3 or not all(_isfloat(t) for t in tok):
                        break
                    rows.append([float(t) for t in tok])
                    k += 1
                if len(rows) != 3:
                    raise err("Supercell: expected three lines of three numbers", k + 1)
                cell = np.array(rows)
            elif word in ("AtomData:", "Atomic_data:"):
                if size is None:
                    raise err("AtomData before Size", k)
                cols = line.split()[1:]
                if "type" not in cols:
                    raise err("AtomData: no 'type' column", k)
                if not (all(c in cols for c in _CART) or all(c in cols for c in _DIRECT)):
                    raise err("AtomData: needs cartes_x/y/z or direct_x/y/z columns", k)
                if k + size > n:
                    raise err(f"AtomData: expected {size} atom lines, file ends", n)
                block = lines[k : k + size]
                try:  # fast path: one numpy conversion for the whole block
                    data = np.array(" ".join(block).split(), dtype=float)
                    ok = data.size == size * len(cols) and all(
                        len(ln.split()) == len(cols) for ln in block
                    )
                except ValueError:
                    ok = False
                if ok:
                    data = data.reshape(size, len(cols))
                    k += size
                else:  # slow path only to name the offending line
                    data = np.empty((size, len(cols)))
                    for a in range(size):
                        tok = lines[k].split()
                        k += 1
                        if len(tok) != len(cols):
                            raise err(f"AtomData: expected {len(cols)} columns, got {len(tok)}", k)
                        for c, t in enumerate(tok):
                            data[a, c] = _num(t, path, k, f"AtomData {cols[c]}")
                atomdata = {c: data[:, i] for i, c in enumerate(cols)}
                tcol = atomdata["type"]
                if np.any(tcol != np.round(tcol)):
                    raise err("AtomData: non-integer type", k)
                unknown = sorted({int(t) for t in tcol} - set(t2n))
                if unknown:
                    raise MTPError(
                        f"type {unknown[0]} used in the configuration at line "
                        f"{begin} is not in atom_types {_fmt(types)}",
                        file=path,
                        field=f"line {begin}",
                    )
            elif word == "Energy":
                if k >= n:
                    raise err("Energy: value missing", k)
                tok = lines[k].split()
                k += 1
                if len(tok) != 1:
                    raise err("Energy: expected one number", k)
                energy = _num(tok[0], path, k, "Energy")
            elif word == "PlusStress:":
                keys = line.split()[1:]
                if sorted(keys) != sorted(_VOIGT):
                    raise err("PlusStress: expected columns xx yy zz yz xz xy", k)
                if k >= n:
                    raise err("PlusStress: values missing", k)
                tok = lines[k].split()
                k += 1
                if len(tok) != 6:
                    raise err("PlusStress: expected six numbers", k)
                vals = {
                    key: _num(t, path, k, "PlusStress") for key, t in zip(keys, tok, strict=False)
                }
                stress = np.array([vals[v] for v in _VOIGT])
            elif word == "Feature":
                parts = line.split(None, 2)
                if len(parts) < 3:
                    raise err("Feature: expected 'Feature name value'", k)
                info[parts[1]] = _feature_value(parts[2].strip())
            else:
                raise err(f"unknown section {word!r}", k)
        if atomdata is None:
            raise err("configuration without AtomData", begin)
        numbers = [t2n[int(t)] for t in atomdata["type"]]
        if all(c in atomdata for c in _CART):
            pos = np.column_stack([atomdata[c] for c in _CART])
            atoms = Atoms(numbers=numbers, positions=pos, cell=cell, pbc=cell is not None)
        else:
            if cell is None:
                raise err("direct coordinates need a Supercell", begin)
            frac = np.column_stack([atomdata[c] for c in _DIRECT])
            atoms = Atoms(numbers=numbers, scaled_positions=frac, cell=cell, pbc=True)
        results: dict = {}
        if energy is not None:
            results["energy"] = energy
            results["free_energy"] = energy
        if all(c in atomdata for c in ("fx", "fy", "fz")):
            results["forces"] = np.column_stack([atomdata[c] for c in ("fx", "fy", "fz")])
        if stress is not None and cell is not None:
            results["stress"] = -stress / abs(np.linalg.det(cell))
        for column, values in atomdata.items():
            if column not in ("id", "type", "fx", "fy", "fz", *_CART, *_DIRECT):
                atoms.arrays[column] = values.copy()
        if "MV_grade" in info:
            try:
                info["MV_grade"] = float(info["MV_grade"])
            except (TypeError, ValueError):
                raise err(f"Feature MV_grade: not a number: {info['MV_grade']!r}", begin) from None
        atoms.info.update(info)
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        images.append(atoms)
    return images


def _isfloat(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fmt(types: Mapping[str, int]) -> str:
    return ",".join(f"{s}={t}" for s, t in types.items())


def format_cfg(
    atoms_list: Iterable, atom_types: str | Mapping[str, int], *, file: str | None = None
) -> str:
    """Serialise configurations to MLIP-2 .cfg text (validates everything first)."""
    types = parse_atom_types(atom_types, file=file)
    n2t = number_to_type(types)
    out: list[str] = []
    for idx, atoms in enumerate(atoms_list):
        missing = sorted({int(z) for z in atoms.numbers} - set(n2t))
        if missing:
            from ase.data import chemical_symbols

            raise MTPError(
                f"configuration {idx} contains {chemical_symbols[missing[0]]}, "
                f"which atom_types {_fmt(types)} does not map",
                file=file,
                field="atom_types",
            )
        results = dict(atoms.calc.results) if atoms.calc is not None else {}
        out.append("BEGIN_CFG\n Size\n")
        out.append(f"{len(atoms):6d}\n")
        periodic = atoms.cell.rank == 3
        if periodic:
            out.append(" Supercell\n")
            for v in atoms.cell:
                out.append(f"    {v[0]:17.10f} {v[1]:17.10f} {v[2]:17.10f}\n")
        forces = results.get("forces")
        extra = [k for k in ("nbh_grades",) if k in atoms.arrays]
        head = " AtomData:  id type       cartes_x      cartes_y      cartes_z"
        if forces is not None:
            head += "           fx          fy          fz"
        for k in extra:
            head += f" {k:>12s}"
        out.append(head + "\n")
        pos = atoms.positions
        for a in range(len(atoms)):
            line = (
                f"    {a + 1:10d} {n2t[int(atoms.numbers[a])]:4d}"
                f" {pos[a, 0]:17.10f} {pos[a, 1]:17.10f} {pos[a, 2]:17.10f}"
            )
            if forces is not None:
                f = forces[a]
                line += f" {f[0]:15.10f} {f[1]:15.10f} {f[2]:15.10f}"
            for k in extra:
                line += f" {atoms.arrays[k][a]:12.6f}"
            out.append(line + "\n")
        energy = results.get("free_energy", results.get("energy"))
        if energy is not None:
            out.append(f" Energy\n{energy:24.12f}\n")
        stress = results.get("stress")
        if stress is not None and periodic:
            s = np.asarray(stress)
            if s.shape == (3, 3):
                s = s.flat[[0, 4, 8, 5, 2, 1]]
            plus = -s * atoms.get_volume()
            out.append(
                " PlusStress:  xx          yy          zz          yz          xz          xy\n"
            )
            out.append("    " + " ".join(f"{v:14.8f}" for v in plus) + "\n")
        for key, value in atoms.info.items():
            if isinstance(value, bool | int | float | np.integer | np.floating):
                out.append(f" Feature   {key}\t{value}\n")
            elif isinstance(value, str) and value and "\n" not in value:
                out.append(f" Feature   {key}\t{value}\n")
        out.append("END_CFG\n\n")
    return "".join(out)


def write_cfg(path: str | Path, atoms_list: Sequence, atom_types: str | Mapping[str, int]) -> None:
    """Write configurations to an MLIP-2 .cfg file atomically."""
    from ase import Atoms

    if isinstance(atoms_list, Atoms):
        atoms_list = [atoms_list]
    text = format_cfg(atoms_list, atom_types, file=str(path))
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise MTPError(f"cannot write: {exc.strerror}", file=str(path)) from None
