"""md_select: Langevin MD with the current MTP, collect uncertain snapshots, select."""

from __future__ import annotations

import logging

from autopot.tasklib import SELECTED

log = logging.getLogger(__name__)


def main() -> None:
    import numpy as np

    from autopot.mtp.calculator import run_md_select
    from autopot.mtp.cfg import read_cfg, write_cfg
    from autopot.task import TaskContext
    from autopot.tasklib.common import backend_of, local_input

    with TaskContext.open() as ctx:
        atom_types = ctx.params["atom_types"]
        start = read_cfg(local_input(ctx, "cfg_fname"), atom_types)[0]
        pot, ts = local_input(ctx, "pot_fname"), local_input(ctx, "ts_fname")
        md = ctx.params["md_args"]  # every key filled from tasks/md_select/bd.yaml
        sel = ctx.params["select_args"]
        gamma_min = sel["gamma_min"]
        with ctx.work("md"):
            result = run_md_select(start, pot, ts, atom_types, md=md, select=sel)
        if result.unphysical:
            log.warning(
                "%s: MD stopped, unphysical snapshot not collected: %s",
                ctx.label,
                result.unphysical,
            )
        chosen = []
        if result.snapshots:
            limit = sel["limit"] or None
            with ctx.work("grade"):
                picked = backend_of(ctx).select_add(
                    pot, ts, result.snapshots, atom_types, threshold=gamma_min, limit=limit
                )
            chosen = [result.snapshots[int(i)] for i in picked.indices]
        write_cfg(ctx.run_dir / SELECTED, chosen, atom_types)
        ctx.add_file(SELECTED)
        ctx.push("n_collected", len(result.snapshots))
        ctx.push("n_selected", len(chosen))
        ctx.push("aborted", bool(result.aborted))
        ctx.push("unphysical", result.unphysical)
        ctx.push("md_steps_done", int(result.step))
        ctx.push("max_grade", float(result.max_grade))
        ctx.push("grades", np.asarray([g for _, g in result.grades], dtype=float))
