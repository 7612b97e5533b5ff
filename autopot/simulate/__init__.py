"""Simulations on any ASE calculator: OPT, EOS, MD, PHONON, NEB, NEB_FROM_ENDPOINTS,
ELASTICITY, SFE, VACANCY.

Each module's ``run(atoms, calculator, **params)`` is the pure computation, returning a
JSON-serialisable dict. The upper-case names are the recorded API (MLIP Arena's style):
the same computation as a task run in a workflow's store, cached by task source + inputs.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "OPT",
    "EOS",
    "MD",
    "PHONON",
    "NEB",
    "NEB_FROM_ENDPOINTS",
    "ELASTICITY",
    "SFE",
    "VACANCY",
    "simulate",
    "compare",
    "SimulationError",
    "SimulationResult",
]


def __getattr__(name: str) -> Any:
    """Lazy: ``import autopot.simulate.md`` in a task process does not load the engine."""
    if name == "compare":
        from autopot.simulate.comparison import compare

        return compare
    if name in __all__:
        from autopot.simulate import api, common

        return getattr(api, name, None) or getattr(common, name)
    raise AttributeError(f"module 'autopot.simulate' has no attribute {name!r}")
