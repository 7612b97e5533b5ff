"""The AutoPot orchestrator: active learning of an MTP until nothing uncertain remains.

Stages (AutoPot paper), each optional, in this order:

1. ``calculate_ts``: reference calculations (sp_calc) of the given training set, then
   the first training.
2. ``select_and_calc_ts``: for each threshold of ``--grades`` (decreasing), D-optimality
   selection from the candidate sets (select), sp_calc of the selected configurations,
   retraining; repeated at a threshold until nothing is selected there.
3. ``md_select_and_calc_ts``: Langevin MD with the current potential from each MD
   configuration (md_select); each MD's selected configurations go to sp_calc as soon
   as that MD ends, less those that configurations sent by other MDs of the same
   iteration already cover (``--no-cross-md-selection`` sends them all); retraining once
   the iteration's sp_calcs have finished; repeated until an iteration's MDs find nothing
   above gamma_min.

With no flags at all it runs the embedded demo (fcc Cu, EMT reference, motep MTP).
Everything it decides is recorded: per iteration the stage, threshold, number of
configurations added, which sp_calc runs went into which train run, and the errors.

Flags are spelled with hyphens (``--atom-types``); the paper's underscore spellings
(``--atom_types``) are accepted as aliases. Task-parameter defaults (MD temperature,
thresholds, training iterations) are those of the tasks' bd.yaml, shown in ``--help``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autopot.activelearning import Settings, run_stages
from autopot.activelearning.settings import DEFAULTS, FLAG_KEYS, PRESETS

if TYPE_CHECKING:
    from autopot.store.schema import TaskSchema


def populate_arg_parser(
    parser: argparse.ArgumentParser, schemas: Mapping[str, TaskSchema] | None = None
) -> None:
    """The paper's flags, plus the knobs a user of a new system needs."""

    def add(*names: str, **kwargs: Any) -> None:
        spelled = [*names]
        for name in names:  # the paper's --atom_types beside --atom-types
            if name.startswith("--") and "-" in name[2:]:
                spelled.append("--" + name[2:].replace("-", "_"))
        dest = names[-1].lstrip("-").replace("-", "_")
        if dest in FLAG_KEYS and schemas is not None:
            task, param, key = FLAG_KEYS[dest]
            default = schemas[task].job[param].full_default()[key]
            kwargs["help"] += f" (default {default:g}: {task} task, {param}.{key})"
        elif dest in DEFAULTS and DEFAULTS[dest] not in ("", None):
            kwargs["help"] += f" (default {DEFAULTS[dest]})"
        parser.add_argument(*spelled, dest=dest, **kwargs)

    add("--potential", help="initial MTP (.mtp); default: an untrained one of --level")
    add(
        "--fresh-potential",
        action="store_true",
        help="once all configurations are collected, retrain from the initial potential",
    )
    add("--training-set", help="initial training set (.cfg)")
    add(
        "--calculate-ts", action="store_true", help="compute reference data of --training-set first"
    )
    add("-a", "--atom-types", help="species to MTP types, e.g. Mo=0,Ta=1")
    add("--select", action="store_true", help="run the selection stage")
    add(
        "-g",
        "--grades",
        nargs="+",
        type=float,
        metavar="GRADE",
        help="decreasing thresholds, e.g. 100000 10000 1000 100 10 2",
    )
    add(
        "--training-candidate-set",
        nargs="+",
        metavar="CFG",
        help="candidate configurations (.cfg) for --select",
    )
    add("--md-select", action="store_true", help="run the MD selection stage")
    add(
        "--md-configurations",
        nargs="+",
        metavar="CFG",
        help="MD starting configurations (.cfg); default: the training set",
    )
    add(
        "--preset", choices=sorted(PRESETS), help="embedded demo inputs (default with no flags: cu)"
    )
    add("--level", type=int, help="level of the generated untrained MTP")
    add(
        "--calculator", help="reference: emt | eam | vasp | module:Class, or a JSON calculator spec"
    )
    add("--pot-fname", help="VASP INCAR or EAM potential file given to every sp_calc")
    add("--md-temperature", type=float, metavar="K", help="MD temperature in K")
    add("--md-steps", type=int, help="MD steps per md_select run")
    add("--md-timestep", type=float, metavar="FS", help="MD time step in fs")
    add("--gamma-min", type=float, help="collect MD configurations above this grade")
    add("--gamma-max", type=float, help="stop an MD above this grade")
    add("--train-iterations", type=int, help="optimizer iterations per training")
    add("--max-iterations", type=int, help="cap on iterations per threshold / MD stage")
    add(
        "--mtp-backend",
        help="motep (default), the path of an MLIP-2 mlp binary, or a JSON backend spec",
    )
    add(
        "--md-args",
        metavar="JSON",
        help="md_select md_args keys (tasks/md_select/bd.yaml), e.g. '{\"friction\": 0.01}'",
    )
    add(
        "--select-args", metavar="JSON", help="md_select select_args keys (tasks/md_select/bd.yaml)"
    )
    add(
        "--no-cross-md-selection",
        action="store_true",
        help="send every MD's selected configurations to sp_calc, even those another MD of "
        "the same iteration already sent (default: graded against them and dropped when no "
        "longer above gamma_min; off only to measure what that saves)",
    )
    add("--train-args", metavar="JSON", help="train train_args keys (tasks/train/bd.yaml)")
    add(
        "--no-validate",
        action="store_true",
        help="skip the validation stage (suite of properties with the final MTP and the "
        "reference, held-out errors) that runs once the active learning converged",
    )
    add(
        "--validation-suite",
        metavar="YAML",
        help="validation suite, merged over the shipped default of its family "
        "(autopot/validation/suites/)",
    )


def check_params(
    params: dict[str, Any], *, workflow_dir: Path, run_name: str, schemas: Mapping[str, TaskSchema]
) -> dict[str, Any]:
    """Every check of flags and input files, before the engine writes anything."""
    settings = Settings.from_params(
        params, workflow_dir=workflow_dir, run_name=run_name, schemas=schemas
    )
    return {"settings": settings}


async def main(workflow: Any, settings: Settings | None = None, **params: Any) -> dict[str, Any]:
    if settings is None:  # called directly rather than through the runner
        settings = Settings.from_params(
            params,
            workflow_dir=Path(workflow.directory),
            run_name=workflow.run_name,
            schemas=workflow.schemas,
        )
    return await run_stages(workflow, settings)
