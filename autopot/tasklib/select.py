"""select: Algorithm 2.1 over the candidate sets at one threshold."""

from __future__ import annotations

from autopot.tasklib import SELECTED


def main() -> None:
    import numpy as np

    from autopot.mtp.cfg import read_cfg, write_cfg
    from autopot.task import TaskContext
    from autopot.tasklib.common import backend_of, local_input, local_inputs

    with TaskContext.open() as ctx:
        atom_types = ctx.params["atom_types"]
        candidates = [
            a
            for path in local_inputs(ctx, "training_candidate_sets")
            for a in read_cfg(path, atom_types)
        ]
        limit = int(ctx.params.get("limit") or 0) or None
        with ctx.work("grade"):
            result = backend_of(ctx).select_add(
                local_input(ctx, "pot_fname"),
                local_input(ctx, "ts_fname"),
                candidates,
                atom_types,
                threshold=float(ctx.params["grade"]),
                limit=limit,
            )
        chosen = []
        for i in result.indices:
            atoms = candidates[int(i)].copy()
            atoms.calc = None
            atoms.info["MV_grade"] = float(result.grades[int(i)])
            atoms.info["candidate_index"] = int(i)
            chosen.append(atoms)
        write_cfg(ctx.run_dir / SELECTED, chosen, atom_types)
        ctx.add_file(SELECTED)
        grades = np.asarray(result.grades, dtype=float)
        ctx.push("n_candidates", len(candidates))
        ctx.push("n_above", int((grades > float(ctx.params["grade"])).sum()))
        ctx.push("n_selected", len(chosen))
        ctx.push("max_grade", float(grades.max()) if grades.size else 0.0)
        ctx.push("grades", grades)
