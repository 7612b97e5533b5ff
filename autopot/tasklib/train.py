"""train: grow the training set with sp_calc results and fit the MTP."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from autopot.errors import AutopotError
from autopot.tasklib import POTENTIAL, RESULT, TRAINING_SET

if TYPE_CHECKING:
    from autopot.task import TaskContext


def sp_calc_results(ctx: TaskContext, ids: list[int]) -> list[Path]:
    """Result files of the given sp_calc runs, found through the workflow's records."""
    runs = ctx.records.runs_by_id("sp_calc", ids, state="FINISHED", field="sp_calc_ids")
    return [ctx.records.run_dir(run) / RESULT for run in runs]


def main() -> None:
    from autopot.mtp.cfg import read_cfg, write_cfg
    from autopot.task import TaskContext
    from autopot.tasklib.common import backend_of, local_input

    with TaskContext.open() as ctx:
        atom_types = ctx.params["atom_types"]
        ts_path = local_input(ctx, "ts_fname")
        training = read_cfg(ts_path, atom_types) if ts_path.stat().st_size else []
        n_before = len(training)
        for result in sp_calc_results(ctx, ctx.params["sp_calc_ids"]):
            training.extend(read_cfg(result, atom_types))
        if not training:
            raise AutopotError("training set is empty", file=ts_path, field="ts_fname")
        write_cfg(ctx.run_dir / TRAINING_SET, training, atom_types)
        ctx.add_file(TRAINING_SET)
        args = dict(ctx.params["train_args"])  # every key filled from tasks/train/bd.yaml
        with ctx.work("train"):
            result = backend_of(ctx).train(
                local_input(ctx, "pot_fname"),
                ctx.run_dir / TRAINING_SET,
                ctx.run_dir / POTENTIAL,
                atom_types=atom_types,
                workdir=ctx.run_dir / "train",
                **args,
            )
        ctx.add_file(POTENTIAL)
        ctx.push("ts_size", len(training))
        ctx.push("ts_added", len(training) - n_before)
        ctx.push("train_wall_s", float(result.wall_seconds))
        for key, value in result.errors.items():
            ctx.push(key, float(value))
