"""The shape of a reference-calculator spec, checked when a run is created.

:func:`autopot.reference.calculators.make_calculator` builds the calculator and checks
everything, files included; this checks what can be checked without the job's files
(sp_calc fills ``pot_fname`` from its job), so the bd.yaml's ``calculator`` parameter
refuses a typo before a run is stored.
"""

from __future__ import annotations

from typing import Any

from autopot.errors import AutopotError

#: Keys of a spec besides the constructor's ``kwargs`` (VASP also takes its own settings).
COMMON_KEYS = ("calculator", "kwargs", "pot_fname")
FILE_KEYS = {"eam": "potential", "vasp": "incar", "mtp": "potential"}
#: Keys a calculator takes beyond its file
OWN_KEYS = {"mtp": ("atom_types",)}


def calculator_name(spec: Any) -> str:
    """The ``calculator`` of a spec mapping (what every consumer of a spec checks first)."""
    if not isinstance(spec, dict):
        raise AutopotError(f"expected a mapping, got {type(spec).__name__}", field="calculator")
    name = spec.get("calculator")
    if not isinstance(name, str) or not name.strip():
        raise AutopotError(
            "missing calculator name (emt, eam, vasp or module:Class)",
            field="calculator.calculator",
        )
    return name


def check_spec(spec: Any) -> dict[str, Any]:
    """Return ``spec`` if its structure is right; AutopotError naming the key otherwise."""
    name = calculator_name(spec)
    if not isinstance(spec.get("kwargs", {}), dict):
        raise AutopotError(
            f"expected a mapping, got {type(spec['kwargs']).__name__}", field="calculator.kwargs"
        )
    for key in ("pot_fname", *FILE_KEYS.values()):
        if key in spec and not isinstance(spec[key], str):
            raise AutopotError(
                f"expected a file path, got {type(spec[key]).__name__}", field=f"calculator.{key}"
            )
    low = name.strip().lower()
    if low == "vasp":
        if "mpi" in spec:  # the MPI launch line, checked before any run is created
            from autopot.reference.calculators import mpi_command

            mpi_command(spec["mpi"], {})
        return spec  # other keys are ASE Vasp settings, checked by ASE in make_calculator
    allowed = {*COMMON_KEYS, *OWN_KEYS.get(low, ())} | (
        {FILE_KEYS[low]} if low in FILE_KEYS else set()
    )
    extra = sorted(k for k in spec if k not in allowed)
    if extra:  # silently ignoring a setting would give a different potential than asked for
        raise AutopotError(
            f"unknown key for {name} (constructor arguments go in kwargs)",
            field=f"calculator.{extra[0]}",
        )
    return spec
