"""Inputs of the embedded demos, generated deterministically (seeded) into the workflow.

* ``cu``: fcc Cu, EMT reference. A small initial training set (strained, perturbed
  2x2x2 supercells, no reference data yet), a candidate set (strained ±2 %, perturbed
  0.02–0.05 Å, three supercell sizes), MD starting points, an untrained MTP.
* ``cuau``: random Cu–Au fcc alloys with Dirichlet-distributed compositions, EMT,
  atom types ``Cu=0,Au=1``.

Deterministic: a restarted orchestrator regenerates identical files, so identical jobs
are recognised and no finished work is repeated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def generate(settings: Any) -> None:
    """Write the preset's inputs under ``settings.inputs_dir`` and point settings at them."""
    from autopot.mtp.cfg import write_cfg
    from autopot.mtp.generator import generate_untrained_mtp

    sizes = settings.preset_sizes
    rng = np.random.default_rng(20261122)
    out = Path(settings.inputs_dir) / "demo"
    out.mkdir(parents=True, exist_ok=True)
    initial, candidates, md_starts = _structures(sizes, rng)
    species = len(settings.atom_types.split(","))
    write_cfg(out / "initial_ts.cfg", initial, settings.atom_types)
    write_cfg(out / "candidates.cfg", candidates, settings.atom_types)
    write_cfg(out / "md_start.cfg", md_starts, settings.atom_types)
    pot = out / f"untrained_{settings.level:02d}.mtp"
    generate_untrained_mtp(
        settings.level, species, cutoff=5.0, min_dist=2.0, radial_basis_size=8, path=pot
    )
    settings.training_set = out / "initial_ts.cfg"
    settings.candidate_sets = [out / "candidates.cfg"]
    settings.md_configurations = [out / "md_start.cfg"]
    settings.potential = pot


def _structures(sizes: dict[str, Any], rng: np.random.Generator) -> tuple[list, list, list]:
    from autopot.sampling import bulk_supercells, perturbed, random_alloys, strained

    if sizes["system"] == "cuau":
        bases = bulk_supercells("Cu", "fcc", a=3.80, sizes=((2, 2, 2),))
        alloys = random_alloys(
            bases[0],
            species=("Cu", "Au"),
            n=sizes["n_initial"] + sizes["n_candidates"] + sizes["n_md"],
            rng=rng,
        )
        initial = perturbed_each(alloys[: sizes["n_initial"]], rng, (0.02, 0.05))
        pool = alloys[sizes["n_initial"] : sizes["n_initial"] + sizes["n_candidates"]]
        candidates = [strained(a, max_strain=0.02, n=1, rng=rng)[0] for a in pool]
        candidates = perturbed_each(candidates, rng, (0.02, 0.05))
        md_starts = alloys[-sizes["n_md"] :]
        return initial, candidates, md_starts
    base_small, base_mid, base_large = bulk_supercells(
        "Cu", "fcc", a=3.61, sizes=((1, 1, 1), (2, 2, 2), (2, 2, 3))
    )
    initial = perturbed(base_mid, amplitude=(0.01, 0.02), n=sizes["n_initial"], rng=rng)
    candidates = []
    per_base = sizes["n_candidates"] // 3
    for base in (base_small, base_mid, base_large):
        for atoms in strained(base, max_strain=0.02, n=per_base, rng=rng):
            candidates.extend(perturbed(atoms, amplitude=(0.02, 0.05), n=1, rng=rng))
    md_starts = perturbed(base_mid, amplitude=(0.0, 0.02), n=sizes["n_md"], rng=rng)
    return initial, candidates, md_starts


def perturbed_each(images: list, rng: np.random.Generator, amplitude: tuple[float, float]) -> list:
    from autopot.sampling import perturbed

    return [perturbed(a, amplitude=amplitude, n=1, rng=rng)[0] for a in images]
