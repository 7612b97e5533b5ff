"""Simulation figures for fcc Cu with EMT, every one a recorded task run.

    python bench/simulate.py [--workflow-dir DIR] [--executor local|slurm]

EOS (11 volumes ±10 %, its 12 relaxations as concurrent OPT runs), ELASTICITY, SFE
(intrinsic fault, relaxed normal to the fault), VACANCY (formation and migration by
CI-NEB in a 32-site cell) and PHONON (3x3x3 supercell of the primitive cell), in a fresh
workflow directory (a temporary one unless given). The EOS is then asked for again: the
second call is answered from the store. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workflow-dir", default=None, help="record here (default: a temporary directory)"
    )
    parser.add_argument("--executor", default="local")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from ase.build import bulk

    from autopot.simulate import ELASTICITY, EOS, PHONON, SFE, VACANCY

    with tempfile.TemporaryDirectory(prefix="autopot-bench-simulate-") as tmp:
        wf = Path(args.workflow_dir or tmp).resolve()
        common = {"calculator": "emt", "workflow": wf, "executor": args.executor}
        cu = bulk("Cu", "fcc", a=3.6, cubic=True)
        t0 = time.perf_counter()
        eos = EOS(atoms=cu, **common)
        eos_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = EOS(atoms=cu, **common)
        cached_wall = time.perf_counter() - t0
        assert again.cached and again.run == eos.run and dict(again) == dict(eos)
        el = ELASTICITY(atoms=cu, **common)
        sfe = SFE(atoms=cu, **common)
        vac = VACANCY(atoms=cu, **common)
        ph = PHONON(atoms=bulk("Cu", "fcc", a=eos["a0_cubic"]), supercell=[3, 3, 3], **common)
    print(
        json.dumps(
            {
                "a0_A": round(eos["a0_cubic"], 5),
                "B0_GPa": round(eos["B0_GPa"], 2),
                "C11_GPa": round(el["C11_GPa"], 2),
                "C12_GPa": round(el["C12_GPa"], 2),
                "C44_GPa": round(el["C44_GPa"], 2),
                "B_from_Cij_over_B0": round(el["B_from_Cij_GPa"] / eos["B0_GPa"], 4),
                "sfe_mJ_m2": round(sfe["sfe_mJ_m2"], 2),
                "vacancy_formation_eV": round(vac["formation_energy"], 4),
                "vacancy_migration_eV": round(vac["migration_barrier"], 4),
                "phonon_gamma_max_THz": float(f"{ph['gamma_max_THz']:.3g}"),
                "eos_wall_s": round(eos_wall, 2),
                "eos_cached_wall_s": round(cached_wall, 4),
                "cached_speedup": round(eos_wall / cached_wall, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
