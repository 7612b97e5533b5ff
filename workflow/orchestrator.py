"""The AutoPot orchestrator: active learning of an MTP until nothing uncertain remains.

Stages (AutoPot paper), each optional, in this order:

1. ``calculate_ts``: reference calculations (sp_calc) of the given training set, then
   the first training.
2. ``select_and_calc_ts``: for each threshold of ``--grades`` (decreasing), D-optimality
   selection from the candidate sets (select), sp_calc of the selected configurations,
   retraining; repeated at a threshold until nothing is selected there.
3. ``md_select_and_calc_ts``: Langevin MD with the current potential from each MD
   configuration (md_select); each MD's selected configurations go to sp_calc as soon
   as that MD ends; retraining once the iteration's sp_calcs have finished; repeated
   until an iteration's MDs find nothing above gamma_min.

With no flags at all it runs the embedded demo (fcc Cu, EMT reference, motep MTP).
Everything it decides is recorded: per iteration the stage, threshold, number of
configurations added, which sp_calc runs went into which train run, and the errors.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from autopot.activelearning import Settings, run_stages


def populate_arg_parser(parser: argparse.ArgumentParser) -> None:
    """The paper's flags, plus the knobs a user of a new system needs."""
    add = parser.add_argument
    add("--potential", help="initial MTP (.mtp); default: an untrained one of --level")
    add("--fresh_potential", action="store_true",
        help="once all configurations are collected, retrain from the initial potential")
    add("--training_set", help="initial training set (.cfg)")
    add("--calculate_ts", action="store_true", help="compute reference data of --training_set first")
    add("-a", "--atom_types", help="species to MTP types, e.g. Mo=0,Ta=1")
    add("--select", action="store_true", help="run the selection stage")
    add("-g", "--grades", nargs="+", type=float, help="decreasing thresholds, e.g. 100000 10000 1000 100 10 2")
    add("--training_candidate_set", nargs="+", help="candidate configurations (.cfg) for --select")
    add("--md_select", action="store_true", help="run the MD selection stage")
    add("--md_configurations", nargs="+", help="MD starting configurations (.cfg); default: the training set")
    add("--preset", choices=["cu", "cuau", "cu-quick"], help="embedded demo inputs (default with no flags: cu)")
    add("--level", type=int, default=None, help="level of the generated untrained MTP (default 8)")
    add("--calculator", default=None,
        help="reference: emt | eam | vasp | module:Class, or a JSON object of the sp_calc calculator spec")
    add("--pot_fname", default=None, help="VASP INCAR or EAM potential file given to every sp_calc")
    add("--md_temperature", type=float, default=None, help="MD temperature in K")
    add("--md_steps", type=int, default=None, help="MD steps per md_select run")
    add("--md_timestep", type=float, default=None, help="MD time step in fs")
    add("--gamma_min", type=float, default=None, help="collect MD configurations above this grade")
    add("--gamma_max", type=float, default=None, help="stop an MD above this grade")
    add("--train_iterations", type=int, default=None, help="optimizer iterations per training")
    add("--max_iterations", type=int, default=None, help="cap on iterations per threshold / MD stage")
    add("--mtp_backend", default=None, help="motep (default) or the path of an MLIP-2 mlp binary")


async def main(workflow: Any, **params: Any) -> dict[str, Any]:
    settings = Settings.from_params(params, workflow_dir=Path(workflow.directory), run_name=workflow.run_name)
    return await run_stages(workflow, settings)
