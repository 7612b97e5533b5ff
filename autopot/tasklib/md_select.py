"""md_select: Langevin MD with the current MTP, collect uncertain snapshots, select."""

from __future__ import annotations

from autopot.errors import AutopotError
from autopot.tasklib import SELECTED


def main() -> None:
    import numpy as np

    from autopot.mtp.calculator import run_md_select
    from autopot.mtp.cfg import read_cfg, write_cfg
    from autopot.task import TaskContext
    from autopot.tasklib.common import backend_of, local_input

    with TaskContext.open() as ctx:
        if ctx.params.get("md_software", "ase") != "ase":
            raise AutopotError(f"unsupported md_software {ctx.params['md_software']!r} (use ase)", field="md_software")
        atom_types = ctx.params["atom_types"]
        start = read_cfg(local_input(ctx, "cfg_fname"), atom_types)[0]
        pot, ts = local_input(ctx, "pot_fname"), local_input(ctx, "ts_fname")
        md = dict(ctx.params["md_args"])
        sel = dict(ctx.params["select_args"])
        gamma_min, gamma_max = float(sel.get("gamma_min", 2.0)), float(sel.get("gamma_max", 10.0))
        result = run_md_select(
            start, pot, ts, atom_types,
            temperature_K=float(md.get("temperature_K", 600.0)), timestep_fs=float(md.get("timestep_fs", 2.0)),
            steps=int(md.get("steps", 1000)), friction=float(md.get("friction", 0.02)), seed=int(md.get("seed", 0)),
            gamma_min=gamma_min, gamma_max=gamma_max, grade_every=int(sel.get("grade_every", 1)),
        )
        chosen = []
        if result.snapshots:
            limit = int(sel.get("limit") or 0) or None
            picked = backend_of(ctx).select_add(pot, ts, result.snapshots, atom_types,
                                                threshold=gamma_min, limit=limit)
            chosen = [result.snapshots[int(i)] for i in picked.indices]
        write_cfg(ctx.run_dir / SELECTED, chosen, atom_types)
        ctx.add_file(SELECTED)
        ctx.push("n_collected", len(result.snapshots))
        ctx.push("n_selected", len(chosen))
        ctx.push("aborted", bool(result.aborted))
        ctx.push("md_steps_done", int(result.step))
        ctx.push("max_grade", float(result.max_grade))
        ctx.push("grades", np.asarray([g for _, g in result.grades], dtype=float))
