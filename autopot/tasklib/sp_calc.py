"""sp_calc: reference energy, forces and stress of one configuration."""

from __future__ import annotations

from autopot.tasklib import RESULT


def main() -> None:
    import numpy as np

    from autopot.mtp.cfg import read_cfg, write_cfg
    from autopot.reference import compute_single_point
    from autopot.task import TaskContext
    from autopot.tasklib.common import local_input

    with TaskContext.open() as ctx:
        atom_types = ctx.params["atom_types"]
        (atoms, *rest) = read_cfg(local_input(ctx, "cfg_fname"), atom_types)
        spec = dict(ctx.params["calculator"])
        if ctx.params.get("pot_fname"):  # the paper's VASP INCAR, or an EAM potential file
            spec.setdefault("pot_fname", str(local_input(ctx, "pot_fname")))
        with ctx.work("reference"):
            result = compute_single_point(atoms, spec, directory=ctx.run_dir / "calc")
        result.info.update({k: v for k, v in atoms.info.items() if k not in result.info})
        write_cfg(ctx.run_dir / RESULT, [result], atom_types)
        ctx.add_file(RESULT)
        energy = float(result.get_potential_energy())
        forces = np.asarray(result.get_forces())
        ctx.push("energy", energy)
        ctx.push("energy_per_atom", energy / len(result))
        ctx.push("natoms", len(result))
        ctx.push("max_force", float(np.linalg.norm(forces, axis=1).max()) if len(result) else 0.0)
        ctx.push("forces", forces)
        try:
            ctx.push("stress", np.asarray(result.get_stress()))
        except Exception:  # noqa: BLE001 - a calculator without stress (molecules)
            pass
