"""MTP engine: .cfg/.mtp I/O, untrained-MTP generator, MLIP-2-compatible active set,
motep (default) and MLIP-2 ``mlp`` backends, and a grading ASE calculator.

Import-light on purpose: ``import autopot.mtp`` pulls in nothing heavy; motep, scipy and
matscipy are imported by the submodules that need them.

Files written next to a potential ``pot.mtp``:
  ``pot.mtp.als.npz`` -- the active set (A, A^-1, owners, mode, fingerprints), see
  :mod:`autopot.mtp.activeset`.  MLIP-2's binary ``state.als`` is not reused: it embeds
  binary configurations and is only meaningful to ``mlp``.
"""

from __future__ import annotations

__all__ = [
    "parse_atom_types",
    "read_cfg",
    "write_cfg",
    "read_mtp",
    "write_mtp",
    "generate_untrained_mtp",
    "get_backend",
]


def __getattr__(name: str):  # lazy re-exports keep the package import cheap
    if name == "parse_atom_types":
        from .atom_types import parse_atom_types

        return parse_atom_types
    if name in ("read_cfg", "write_cfg"):
        from . import cfg

        return getattr(cfg, name)
    if name in ("read_mtp", "write_mtp"):
        from . import mtpfile

        return getattr(mtpfile, name)
    if name == "generate_untrained_mtp":
        from .generator import generate_untrained_mtp

        return generate_untrained_mtp
    if name == "get_backend":
        from .backend import get_backend

        return get_backend
    raise AttributeError(name)
