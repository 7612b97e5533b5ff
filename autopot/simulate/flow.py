"""The orchestrator of simulation calls: one requested job, its parts concurrently.

``main`` is the ``orchestrator`` of the simulate motoko file. A part already finished
(same identity, any workflow run) is reused unless ``refresh``; EOS runs its full
relaxation, then every volume's relaxation at once, as OPT runs of their own, and
records the fit as an EOS run naming them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from autopot.simulate import store


async def main(workflow: Any, task: str, job: dict[str, Any], refresh: bool = False,
               run_params: dict[str, Any] | None = None) -> None:
    label = await ensure(workflow, task, job, refresh, run_params or {})
    workflow.update_summary(result_run=label)


async def ensure(workflow: Any, task: str, job: dict[str, Any], refresh: bool,
                 run_params: dict[str, Any]) -> str:
    """Label of a FINISHED run of ``job``: recorded, or run now."""
    if not refresh:
        workflow.store.sync()
        done = store.finished_run(workflow.store.root, task, job)
        if done is not None:
            return done.label
    if task == "eos":
        return await _eos(workflow, job, refresh, run_params)
    runs = await workflow[task].create_tasks(run_params=run_params, **job)
    return runs[0].label


async def _eos(workflow: Any, job: dict[str, Any], refresh: bool, run_params: dict[str, Any]) -> str:
    from autopot.simulate import eos
    from autopot.simulate.common import atoms_from_dict
    from autopot.store.records import get_run

    relax = {k: job[k] for k in ("structure", "calculator", "calculator_files", "optimizer",
                                 "filter", "fmax", "steps", "symmetry")}
    full = await ensure(workflow, "opt", relax, refresh, run_params)
    workflow.store.sync()
    relaxed = atoms_from_dict(get_run(workflow.store.root, full).quantities["structure"])
    shas = [store.store_structure(workflow.directory, a)
            for a in eos.strained(relaxed, job["n_points"], job["max_strain"])]
    points = await asyncio.gather(*(
        ensure(workflow, "opt", {**relax, "structure": sha, "filter": "none"}, refresh, run_params)
        for sha in shas))
    runs = await workflow.eos.create_tasks(run_params={**run_params, "opt_runs": [full, *points]},
                                           **job)
    return runs[0].label
