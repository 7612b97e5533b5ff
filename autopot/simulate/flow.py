"""The orchestrator of simulation calls: one requested job, its parts concurrently.

``main`` is the ``orchestrator`` of the simulate motoko file. A part already finished
(same identity, any workflow run) is reused unless ``refresh``. EOS runs its full
relaxation, then every volume's relaxation at once, as OPT runs of their own, and
records the fit as an EOS run naming them. VACANCY relaxes the bulk (OPT), then runs the
perfect supercell's energy (OPT without steps), the relaxed defect (OPT) and the hop
(NEB_FROM_ENDPOINTS) side by side, and records their combination as a VACANCY run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from autopot.simulate import tasks


async def main(
    workflow: Any,
    task: str,
    job: dict[str, Any],
    refresh: bool = False,
    run_params: dict[str, Any] | None = None,
    simulation: bool = True,
) -> None:
    """``simulation`` is only a marker in the workflow run's params: code choosing "the
    latest AutoPot run" of a shared workflow directory can skip these runs."""
    label = await ensure(workflow, task, job, refresh, run_params or {})
    workflow.update_summary(result_run=label)


async def ensure(
    workflow: Any, task: str, job: dict[str, Any], refresh: bool, run_params: dict[str, Any]
) -> str:
    """Label of a FINISHED run of ``job``: recorded, or run now."""
    if not refresh:
        workflow.store.sync()
        done = tasks.finished_run(workflow.store.root, task, job)
        if done is not None:
            return done.label
    if task in COMPOSERS:
        return await COMPOSERS[task](workflow, job, refresh, run_params)
    runs = await workflow[task].create_tasks(run_params=run_params, **job)
    return runs[0].label


async def _eos(
    workflow: Any, job: dict[str, Any], refresh: bool, run_params: dict[str, Any]
) -> str:
    from autopot.simulate import eos
    from autopot.simulate.common import atoms_from_dict
    from autopot.store.records import get_run

    relax = {
        k: job[k]
        for k in (
            "structure",
            "calculator",
            "calculator_files",
            "optimizer",
            "filter",
            "fmax",
            "steps",
            "symmetry",
        )
    }
    full = await ensure(workflow, "opt", relax, refresh, run_params)
    workflow.store.sync()
    relaxed = atoms_from_dict(get_run(workflow.store.root, full).quantities["structure"])
    shas = [
        tasks.store_structure(workflow.directory, a)
        for a in eos.strained(relaxed, job["n_points"], job["max_strain"])
    ]
    points = await asyncio.gather(
        *(
            ensure(
                workflow, "opt", {**relax, "structure": sha, "filter": "none"}, refresh, run_params
            )
            for sha in shas
        )
    )
    runs = await workflow.eos.create_tasks(
        run_params={**run_params, "opt_runs": [full, *points]}, **job
    )
    return runs[0].label


async def _vacancy(
    workflow: Any, job: dict[str, Any], refresh: bool, run_params: dict[str, Any]
) -> str:
    from autopot.simulate import vacancy
    from autopot.simulate.common import atoms_from_dict
    from autopot.store.records import get_run

    base = {k: job[k] for k in ("calculator", "calculator_files")}
    p = {k: job[k] for k in vacancy.DEFAULTS}
    parts: dict[str, str] = {}
    if p["relax_bulk"]:
        parts["bulk"] = await ensure(
            workflow,
            "opt",
            {**base, "structure": job["structure"], **vacancy.bulk_relax_settings(p)},
            refresh,
            run_params,
        )
        workflow.store.sync()
        bulk = atoms_from_dict(get_run(workflow.store.root, parts["bulk"]).quantities["structure"])
    else:
        bulk = read_stored(workflow.directory, job["structure"])
    cell, initial, final, _ = vacancy.defect_cells(bulk, p)

    def sha(atoms: Any) -> str:
        return tasks.store_structure(workflow.directory, atoms)

    positions_only = {
        "optimizer": p["optimizer"],
        "filter": "none",
        "fmax": p["fmax"],
        "symmetry": False,
    }
    jobs = {
        "perfect": ("opt", {**base, "structure": sha(cell), **positions_only, "steps": 0}),
        "defect": (
            "opt",
            {**base, "structure": sha(initial), **positions_only, "steps": p["steps"]},
        ),
    }
    if p["migration"]:
        jobs["neb"] = (
            "neb_from_endpoints",
            {**base, "structure": sha(initial), "final": sha(final), **vacancy.neb_settings(p)},
        )
    labels = await asyncio.gather(
        *(ensure(workflow, task, part, refresh, run_params) for task, part in jobs.values())
    )
    parts.update(zip(jobs, labels, strict=True))
    runs = await workflow.vacancy.create_tasks(run_params={**run_params, "parts": parts}, **job)
    return runs[0].label


def read_stored(workflow_dir: Any, sha: str) -> Any:
    from ase.io import read

    return read(tasks.structure_path(workflow_dir, sha), format="extxyz")


COMPOSERS = {"eos": _eos, "vacancy": _vacancy}
