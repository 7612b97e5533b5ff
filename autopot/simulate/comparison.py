"""Validation in one call: the same simulations for several calculators, side by side.

    table = compare("Cu.cif", {"EMT": "emt", "MTP": "train.8"}, workflow="autopot-workflow")
    table["MTP"]["a0_A"], table["MTP"]["a0_A_dev"]        # value and deviation from EMT

The first calculator is the reference. Every simulation is a recorded, cached task run,
so validating the next potential computes only its own side: the reference's runs are
recalled from the store (the AutoPot paper's Table 2, kept up to date cheaply).
"""

from __future__ import annotations

from typing import Any

#: what each simulation contributes to the table: column → result key
FIGURES: dict[str, dict[str, str]] = {
    "eos": {"a0_A": "a0_cubic", "V0_per_atom_A3": "V0_per_atom", "B0_GPa": "B0_GPa"},
    "elasticity": {"C11_GPa": "C11_GPa", "C12_GPa": "C12_GPa", "C44_GPa": "C44_GPa"},
    "sfe": {"sfe_mJ_m2": "sfe_mJ_m2"},
    "vacancy": {
        "vacancy_formation_eV": "formation_energy",
        "vacancy_migration_eV": "migration_barrier",
    },
}


def compare(
    atoms: Any,
    calculators: dict[str, Any] | list[Any],
    simulations: tuple[str, ...] = ("eos", "elasticity", "sfe"),
    *,
    params: dict[str, dict[str, Any]] | None = None,
    **common: Any,
) -> dict[str, dict[str, Any]]:
    """``{calculator name: {figure: value, figure_dev: relative deviation, runs: [...]}}``."""
    from autopot.simulate.api import simulate
    from autopot.simulate.common import SimulationError

    if isinstance(calculators, list):
        calculators = {str(c): c for c in calculators}
    if not calculators:
        raise SimulationError("give at least one calculator", field="calculators")
    unknown = [s for s in simulations if s not in FIGURES]
    if unknown:
        raise SimulationError(
            f"not comparable: {unknown[0]!r}; use {', '.join(FIGURES)}", field="simulations"
        )
    table: dict[str, dict[str, Any]] = {}
    for name, calculator in calculators.items():
        row: dict[str, Any] = {"runs": []}
        for task in simulations:
            result = simulate(
                task, {"structure": atoms}, calculator, **common, **(params or {}).get(task, {})
            )
            row["runs"].append(result.run)
            for column, key in FIGURES[task].items():
                row[column] = result.get(key)
        table[name] = row
    reference = next(iter(table.values()))
    for row in table.values():
        for column in [c for c in row if c != "runs" and not c.endswith("_dev")]:
            ref, value = reference.get(column), row.get(column)
            row[f"{column}_dev"] = (value / ref - 1) if ref and value is not None else None
    return table
