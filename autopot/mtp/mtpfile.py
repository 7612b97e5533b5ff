"""MLIP-2 ``.mtp`` files (the legacy flat format that both ``mlp`` and motep read).

We parse ourselves, line by line, so that a malformed file is reported with its line, and
we write through motep's legacy writer into a temporary file that is renamed into place
(motep's default writer produces a grouped format that neither motep nor mlp reads back).
The active set of a potential lives next to it, see :func:`activeset_path`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autopot.errors import MTPError

if TYPE_CHECKING:
    from motep.potentials.mtp.data import MTPData

_INT_KEYS = {
    "species_count",
    "radial_basis_size",
    "radial_funcs_count",
    "alpha_moments_count",
    "alpha_index_basic_count",
    "alpha_index_times_count",
    "alpha_scalar_moments",
}
_FLOAT_KEYS = {"scaling", "min_dist", "max_dist"}
_STR_KEYS = {"version", "potential_name", "potential_tag", "radial_basis_type"}
_REQUIRED = [
    "species_count",
    "radial_basis_type",
    "min_dist",
    "max_dist",
    "radial_basis_size",
    "radial_funcs_count",
    "alpha_moments_count",
    "alpha_index_basic_count",
    "alpha_index_basic",
    "alpha_index_times_count",
    "alpha_index_times",
    "alpha_scalar_moments",
    "alpha_moment_mapping",
]
_ALIASES = {
    "min_val": "min_dist",
    "max_val": "max_dist",
    "basis_size": "radial_basis_size",
    "min": "min_dist",
    "max": "max_dist",
    "size": "radial_basis_size",
}


def activeset_path(pot: str | Path) -> Path:
    """Where the active set of ``pot`` is stored: ``<pot>.als.npz`` beside it."""
    pot = Path(pot)
    return pot.with_name(pot.name + ".als.npz")


def save_active_set(pot: str | Path, active_set) -> Path:
    """Store ``active_set`` beside ``pot`` (see :class:`autopot.mtp.activeset.ActiveSet`)."""
    path = activeset_path(pot)
    active_set.save(path)
    return path


def load_active_set(pot: str | Path):
    """The active set stored beside ``pot``, or ``None`` if there is none."""
    from .activeset import ActiveSet

    path = activeset_path(pot)
    return ActiveSet.load(path) if path.exists() else None


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _int_list(text: str, path: str, lineno: int, key: str) -> list[int]:
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise MTPError(f"{key}: expected {{...}}", file=path, field=f"line {lineno}")
    try:
        return [int(t) for t in re.findall(r"-?[^\s,{}]+", body)]
    except ValueError:
        raise MTPError(f"{key}: expected integers", file=path, field=f"line {lineno}") from None


def _float_list(text: str, path: str, lineno: int, key: str) -> list[float]:
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise MTPError(f"{key}: expected {{...}}", file=path, field=f"line {lineno}")
    try:
        return [float(t) for t in body.strip("{}").split(",") if t.strip()]
    except ValueError:
        raise MTPError(f"{key}: expected numbers", file=path, field=f"line {lineno}") from None


def read_mtp(path: str | Path) -> MTPData:
    """Read an MLIP-2 .mtp (trained or untrained) into motep's ``MTPData``."""
    from motep.potentials.mtp.data import MTPData

    path = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise MTPError(f"cannot read: {exc.strerror}", file=path) from None
    except UnicodeDecodeError:
        raise MTPError("not a text .mtp file", file=path) from None
    if not lines or lines[0].strip() != "MTP":
        raise MTPError("first line must be 'MTP'", file=path, field="line 1")
    raw: dict = {}
    where: dict[str, int] = {}
    k = 1
    n = len(lines)
    while k < n:
        line = lines[k].strip()
        k += 1
        if not line or line.startswith("#"):
            continue
        if line == "radial_coeffs":
            for key in ("species_count", "radial_funcs_count", "radial_basis_size"):
                if key not in raw:
                    raise MTPError(f"radial_coeffs before {key}", file=path, field=f"line {k}")
            spc, rfc, rbs = (
                raw["species_count"],
                raw["radial_funcs_count"],
                raw["radial_basis_size"],
            )
            coeffs = np.empty((spc, spc, rfc, rbs))
            for a in range(spc):
                for b in range(spc):
                    if k >= n or lines[k].strip() != f"{a}-{b}":
                        raise MTPError(
                            f"radial_coeffs: expected '{a}-{b}'", file=path, field=f"line {k + 1}"
                        )
                    k += 1
                    for f in range(rfc):
                        if k >= n:
                            raise MTPError("radial_coeffs: file ends", file=path, field=f"line {k}")
                        vals = _float_list(lines[k], path, k + 1, "radial_coeffs")
                        k += 1
                        if len(vals) != rbs:
                            raise MTPError(
                                f"radial_coeffs: expected {rbs} numbers "
                                f"(radial_basis_size), got {len(vals)}",
                                file=path,
                                field=f"line {k}",
                            )
                        coeffs[a, b, f] = vals
            raw["radial_coeffs"] = coeffs
            continue
        if "=" not in line:
            raise MTPError(
                f"expected 'key = value', got {line[:40]!r}", file=path, field=f"line {k}"
            )
        key, _, value = (s.strip() for s in line.partition("="))
        key = _ALIASES.get(key, key)
        where[key] = k
        if key == "magnetic_basis_type":
            raise MTPError("magnetic MTPs are not supported", file=path, field=f"line {k}")
        if key in _INT_KEYS:
            if not re.fullmatch(r"\d+", value):
                raise MTPError(
                    f"{key}: expected a non-negative integer, got {value!r}",
                    file=path,
                    field=f"line {k}",
                )
            raw[key] = int(value)
        elif key in _FLOAT_KEYS:
            try:
                raw[key] = float(value)
            except ValueError:
                raise MTPError(
                    f"{key}: not a number: {value!r}", file=path, field=f"line {k}"
                ) from None
        elif key in ("alpha_index_basic", "alpha_index_times"):
            indices = _int_list(value, path, k, key)
            if len(indices) % 4:
                raise MTPError(f"{key}: entries must have 4 integers", file=path, field=f"line {k}")
            raw[key] = np.array(indices, dtype=np.int32).reshape(-1, 4)
        elif key == "alpha_moment_mapping":
            raw[key] = np.array(_int_list(value, path, k, key), dtype=np.int32)
        elif key in ("species_coeffs", "moment_coeffs"):
            raw[key] = np.array(_float_list(value, path, k, key))
        elif key in _STR_KEYS:
            raw[key] = value
        else:
            raise MTPError(f"unknown key {key!r}", file=path, field=f"line {k}")
    for key in _REQUIRED:
        if key not in raw:
            raise MTPError(f"{key} missing", file=path, field=key)
    if raw["radial_basis_type"] != "RBChebyshev":
        raise MTPError(
            f"only RBChebyshev is supported, got {raw['radial_basis_type']!r}",
            file=path,
            field=f"line {where['radial_basis_type']}",
        )
    if not raw["min_dist"] < raw["max_dist"]:
        raise MTPError("min_dist must be < max_dist", file=path, field=f"line {where['max_dist']}")
    checks = [
        ("alpha_index_basic", "alpha_index_basic_count"),
        ("alpha_index_times", "alpha_index_times_count"),
        ("alpha_moment_mapping", "alpha_scalar_moments"),
    ]
    for arr, cnt in checks:
        if len(raw[arr]) != raw[cnt]:
            raise MTPError(
                f"{arr} has {len(raw[arr])} entries but {cnt} = {raw[cnt]}",
                file=path,
                field=f"line {where[arr]}",
            )
    amc = raw["alpha_moments_count"]
    basic = raw["alpha_index_basic"]
    if basic.size and (basic[:, 0].max() >= raw["radial_funcs_count"] or basic.min() < 0):
        raise MTPError(
            "alpha_index_basic uses a radial function >= radial_funcs_count",
            file=path,
            field=f"line {where['alpha_index_basic']}",
        )
    times = raw["alpha_index_times"]
    if times.size and (times[:, [0, 1, 3]].max() >= amc or times.min() < 0):
        raise MTPError(
            "alpha_index_times refers to a moment >= alpha_moments_count",
            file=path,
            field=f"line {where['alpha_index_times']}",
        )
    mapping = raw["alpha_moment_mapping"]
    if mapping.size and (mapping.max() >= amc or mapping.min() < 0):
        raise MTPError(
            "alpha_moment_mapping refers to a moment >= alpha_moments_count",
            file=path,
            field=f"line {where['alpha_moment_mapping']}",
        )
    for key, size in (
        ("species_coeffs", raw["species_count"]),
        ("moment_coeffs", raw["alpha_scalar_moments"]),
    ):
        if key in raw and len(raw[key]) != size:
            raise MTPError(
                f"{key} has {len(raw[key])} values, expected {size}",
                file=path,
                field=f"line {where[key]}",
            )
    data = MTPData(
        version=raw.get("version", "1.1.0"),
        potential_name=raw.get("potential_name", "MTP1m"),
        scaling=raw.get("scaling", 1.0),
        species_count=raw["species_count"],
        potential_tag=raw.get("potential_tag", ""),
        radial_basis={
            "type": "RBChebyshev",
            "min": np.float64(raw["min_dist"]),
            "max": np.float64(raw["max_dist"]),
            "size": raw["radial_basis_size"],
        },
        radial_funcs_count=raw["radial_funcs_count"],
        radial_coeffs=raw.get("radial_coeffs"),
        alpha_moments_count=amc,
        alpha_index_basic_count=raw["alpha_index_basic_count"],
        alpha_index_basic=basic,
        alpha_index_times_count=raw["alpha_index_times_count"],
        alpha_index_times=times,
        alpha_scalar_moments=raw["alpha_scalar_moments"],
        alpha_moment_mapping=mapping,
        species_coeffs=raw.get("species_coeffs"),
        moment_coeffs=raw.get("moment_coeffs"),
    )
    return data


def is_trained(data: MTPData) -> bool:
    return all(
        getattr(data, k) is not None for k in ("radial_coeffs", "species_coeffs", "moment_coeffs")
    )


def write_mtp(path: str | Path, data: MTPData) -> None:
    """Write ``data`` in the legacy MLIP-2 format, atomically."""
    from motep.io.mlip.mtp import write_mtp as motep_write

    from autopot.atomic import atomic_path

    with atomic_path(path, suffix=".mtp") as tmp:
        optimized = list(data.optimized)
        motep_write(str(tmp), data, legacy=True)
        data.optimized = optimized
