"""Validation of potentials: a suite of properties computed with a potential and with its
reference as recorded simulation runs (the reference side cached), a held-out test set,
the AutoPot paper's Table 2, benchmarks of several models and a leaderboard.

    from autopot.validation import validate
    result = validate("autopot-workflow")            # the last potential of the workflow
    result["text"]                                   # "9 of 12 properties within tolerance"
"""

from __future__ import annotations

from typing import Any

__all__ = ["validate", "load_suite", "benchmark"]


def __getattr__(name: str) -> Any:
    """Lazy: importing the package loads neither ASE nor the engine."""
    if name == "validate":
        from autopot.validation.api import validate

        return validate
    if name == "load_suite":
        from autopot.validation.suite import load_suite

        return load_suite
    if name == "benchmark":
        from autopot.validation.leaderboard import benchmark

        return benchmark
    raise AttributeError(f"module 'autopot.validation' has no attribute {name!r}")
