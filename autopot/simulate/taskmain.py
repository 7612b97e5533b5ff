"""What the simulation templates' ``doIt.py`` run: read the job, build the calculator,
call the pure simulation, record its result dict (``result.json`` and quantities).

The structure comes from the workflow's content-addressed ``structures/<sha256>.extxyz``
(its sha256 is the job parameter) and is copied into the run directory, so a run
directory is self-contained for archives and re-runs by hand.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from autopot.simulate.common import SimulationError, plain

RESULT_FILE = "result.json"


def load_structure(ctx: Any, sha: str, name: str) -> Any:
    """The job's structure ``sha``, checked against its hash, copied as ``<name>.extxyz``."""
    from ase.io import read

    from autopot.simulate.tasks import structure_path

    source = structure_path(ctx.workflow_dir, sha)
    if not source.is_file():
        raise SimulationError(
            "structure file missing from the workflow directory", file=source, field=name
        )
    if hashlib.sha256(source.read_bytes()).hexdigest() != sha:
        raise SimulationError(
            "structure file does not match its sha256 (edited?)", file=source, field=name
        )
    local = ctx.run_dir / f"{name}.extxyz"
    shutil.copyfile(source, local)
    return read(local, format="extxyz")


def _params(ctx: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: ctx.params[k] for k in defaults}


def _calculator(ctx: Any) -> Any:
    from autopot.reference.calculators import make_calculator

    return make_calculator(dict(ctx.params["calculator"]), directory=ctx.run_dir / "calc")


def _simple(module: Any) -> Any:
    def run(ctx: Any) -> dict[str, Any]:
        atoms = load_structure(ctx, ctx.params["structure"], "structure")
        return module.run(atoms, _calculator(ctx), **_params(ctx, module.DEFAULTS))

    return run


def _opt(ctx: Any) -> dict[str, Any]:
    from ase.io import write

    from autopot.simulate import opt
    from autopot.simulate.common import atoms_from_dict

    result = _simple(opt)(ctx)
    write(ctx.run_dir / "relaxed.extxyz", atoms_from_dict(result["structure"]), format="extxyz")
    return result


def _md(ctx: Any) -> dict[str, Any]:
    from autopot.simulate import md

    atoms = load_structure(ctx, ctx.params["structure"], "structure")
    return md.run(atoms, _calculator(ctx), directory=ctx.run_dir, **_params(ctx, md.DEFAULTS))


def _neb(ctx: Any) -> dict[str, Any]:
    from autopot.simulate import neb

    images = [load_structure(ctx, sha, f"image_{i}") for i, sha in enumerate(ctx.params["images"])]
    return neb.run(images, _calculator(ctx), **_params(ctx, neb.DEFAULTS))


def _neb_from_endpoints(ctx: Any) -> dict[str, Any]:
    from autopot.simulate import neb

    initial = load_structure(ctx, ctx.params["structure"], "structure")
    final = load_structure(ctx, ctx.params["final"], "final")
    return neb.from_endpoints(
        initial, final, _calculator(ctx), **_params(ctx, neb.ENDPOINT_DEFAULTS)
    )


def _eos(ctx: Any) -> dict[str, Any]:
    """The fit over the recorded OPT runs (full relaxation first, then one per volume)."""
    from autopot.simulate import eos
    from autopot.simulate.common import atoms_from_dict

    labels = list(ctx.params["opt_runs"])
    if len(labels) < 1 + ctx.params["n_points"]:
        raise SimulationError(
            f"expected {1 + ctx.params['n_points']} OPT runs, got {len(labels)}", field="opt_runs"
        )
    runs = [ctx.records.run(label) for label in labels]
    for run in runs:
        if run.state != "FINISHED":
            raise SimulationError(f"{run.label} is {run.state}", field="opt_runs")
    full, points = runs[0].quantities, [r.quantities for r in runs[1:]]
    result = eos.fit(
        [q["volume"] for q in points], [q["energy"] for q in points], int(full["natoms"])
    )
    result["a0_cubic"] = eos.cubic_a0(atoms_from_dict(full["structure"]), result["V0"])
    result["converged"] = all(bool(q["converged"]) for q in (full, *points))
    result["relaxed_energy"] = float(full["energy"])
    result["opt_runs"] = labels
    return result


def _vacancy(ctx: Any) -> dict[str, Any]:
    """The combination of the recorded parts (bulk OPT, perfect, defect, NEB)."""
    from autopot.simulate import vacancy
    from autopot.simulate.common import atoms_from_dict

    p = _params(ctx, vacancy.DEFAULTS)
    parts = dict(ctx.params["parts"])
    needed = (
        {"perfect", "defect"}
        | ({"neb"} if p["migration"] else set())
        | ({"bulk"} if p["relax_bulk"] else set())
    )
    if set(parts) != needed:
        raise SimulationError(
            f"expected parts {sorted(needed)}, got {sorted(parts)}", field="parts"
        )
    runs = {name: ctx.records.run(label) for name, label in parts.items()}
    for run in runs.values():
        if run.state != "FINISHED":
            raise SimulationError(f"{run.label} is {run.state}", field="parts")
    q = {name: run.quantities for name, run in runs.items()}
    bulk = (
        atoms_from_dict(q["bulk"]["structure"])
        if "bulk" in q
        else load_structure(ctx, ctx.params["structure"], "structure")
    )
    cell, _, _, distance = vacancy.defect_cells(bulk, p)
    result = vacancy.combine(
        len(cell), float(q["perfect"]["energy"]), q["defect"], q.get("neb"), distance
    )
    result["parts"] = parts
    return result


def _runners() -> dict[str, Any]:
    from autopot.simulate import elasticity, phonon, sfe

    return {
        "opt": _opt,
        "eos": _eos,
        "md": _md,
        "neb": _neb,
        "neb_from_endpoints": _neb_from_endpoints,
        "phonon": _simple(phonon),
        "elasticity": _simple(elasticity),
        "sfe": _simple(sfe),
        "vacancy": _vacancy,
    }


def main(task: str) -> None:
    from autopot.task import TaskContext

    with TaskContext.open() as ctx:
        result = plain(_runners()[task](ctx))
        Path(ctx.run_dir / RESULT_FILE).write_text(json.dumps(result, indent=1))
        ctx.add_file(RESULT_FILE)
        for key, value in result.items():
            ctx.push(key, value)
