"""The three stages of the AutoPot workflow and the training step between them.

Written against the engine's Workflow API only: ``create_tasks`` and awaiting runs.
Deterministic in everything it writes (file names from run labels, seeds from
iteration numbers), so rerunning after a crash re-creates identical jobs and the
engine hands back the finished runs instead of repeating them. The one decision that
depends on timing, which MD's picks the cross-MD filter keeps, is made restart-safe by
:mod:`autopot.activelearning.online_selection` (the dispatched picks' files are its
journal).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autopot.engine.runs import RunList, RunView
from autopot.errors import WorkflowError
from autopot.tasklib import POTENTIAL, SELECTED, TRAINING_SET

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """What the workflow currently stands on, and what every iteration did."""

    potential: Path
    training_set: Path
    initial_potential: Path
    iterations: list[dict[str, Any]] = field(default_factory=list)
    reference_calls: int = 0


def split_cfg(source: Path, dest_dir: Path, atom_types: str) -> list[Path]:
    """One .cfg per configuration (sp_calc takes one); same content → same file names."""
    from autopot.mtp.cfg import read_cfg

    images = read_cfg(source, atom_types) if source.stat().st_size else []
    return write_each(images, dest_dir, atom_types)


def write_each(
    images: Sequence[Any], dest_dir: Path, atom_types: str, indices: Iterable[int] | None = None
) -> list[Path]:
    """``images[i]`` (all, or those of ``indices``) as ``dest_dir/<i:04d>.cfg``: the name is
    the configuration's index, so a rerun re-creates the same sp_calc jobs (and the cross-MD
    filter's journal finds its dispatched picks under the same names)."""
    from autopot.mtp.cfg import write_cfg

    dest_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(len(images)) if indices is None else indices:
        path = dest_dir / f"{i:04d}.cfg"
        write_cfg(path, [images[i]], atom_types)
        out.append(path)
    return out


async def reference_calculations(workflow: Any, s: Any, files: list[Path]) -> RunList:
    """sp_calc of every file; failures are logged and left out (a VASP run that did not
    converge should not stop a week-long workflow), but all failing is an error."""
    if not files:
        return RunList([], workflow)
    runs = workflow.sp_calc.create_tasks(
        cfg_fname=[str(f) for f in files],
        pot_fname=s.pot_fname,
        run_params={"calculator": s.calculator, "atom_types": s.atom_types},
    )
    await runs.settled()
    if runs.failed:
        workflow.log(
            f"{len(runs.failed)} of {len(runs)} sp_calc runs failed: "
            + "; ".join(f"{r.label}: {r.cause}" for r in runs.failed[:3])
        )
    if not runs.finished:
        raise WorkflowError(
            f"every sp_calc of this step failed (first: {runs[0].label}: {runs[0].cause})",
            field="sp_calc",
        )
    return RunList(runs.finished, workflow)


async def train(
    workflow: Any,
    s: Any,
    progress: Progress,
    sp_runs: list[RunView],
    context: dict[str, Any],
    *,
    fresh: bool = False,
    record: dict[str, Any] | None = None,
) -> RunView:
    """Add ``sp_runs``' results to the training set and fit; the new potential becomes current.

    ``context`` is part of the train job (its identity); ``record`` only goes into the
    iteration's summary entry (e.g. timings, which differ between a run and its restart).
    """
    start = progress.initial_potential if fresh else progress.potential
    (run,) = await workflow.train.create_tasks(
        pot_fname=str(start),
        ts_fname=str(progress.training_set),
        sp_calc_ids=sorted(r.id for r in sp_runs),
        atom_types=s.atom_types,
        train_args=s.train_args,
        context=context,
        run_params={"mtp_backend": s.mtp_backend},
    )
    progress.potential = run.path(POTENTIAL)
    progress.training_set = run.path(TRAINING_SET)
    progress.reference_calls += len(sp_runs)
    q = run.quantities
    entry = {
        **context,
        "n_added": len(sp_runs),
        "sp_calc": [r.label for r in sp_runs],
        "train": run.label,
        "ts_size": q.get("ts_size"),
        "errors": {k: q[k] for k in sorted(q) if any(w in k for w in ("rmse", "mae"))},
        "potential": str(progress.potential),
        "time": time.time(),
        **(record or {}),
    }
    progress.iterations.append(entry)
    workflow.update_summary(
        iterations=progress.iterations,
        potential=str(progress.potential),
        training_set=str(progress.training_set),
        reference_calls=progress.reference_calls,
    )
    rmse = q.get("energy_rmse_per_atom")
    workflow.log(
        f"{run.label}: {context['stage']} iteration {context.get('iteration', 0)}"
        + (f" (threshold {context['threshold']:g})" if "threshold" in context else "")
        + f": +{len(sp_runs)} configurations, training set {q.get('ts_size')}"
        + (f", energy RMSE {rmse * 1000:.2f} meV/atom" if rmse is not None else "")
    )
    return run


async def calculate_ts(workflow: Any, s: Any, progress: Progress) -> None:
    """Stage 1: reference data for the given training set, then the first fit."""
    files = split_cfg(s.training_set, s.inputs_dir / "calculate_ts", s.atom_types)
    workflow.log(f"calculate_ts: {len(files)} reference calculations")
    empty = s.inputs_dir / "empty.cfg"
    empty.parent.mkdir(parents=True, exist_ok=True)
    empty.write_text("")
    progress.training_set = empty
    sp_runs = await reference_calculations(workflow, s, files)
    await train(workflow, s, progress, list(sp_runs), {"stage": "calculate_ts", "iteration": 0})


async def select_and_calc_ts(workflow: Any, s: Any, progress: Progress) -> list[float]:
    """Stage 2: thresholds in decreasing order; at each, select → sp_calc → train until
    nothing above it is left (or ``max_iterations``). Returns the thresholds left with
    configurations above them when ``max_iterations`` ran out."""
    capped = []
    for threshold in s.grades:
        for iteration in range(1, s.max_iterations + 1):
            (sel,) = await workflow.select.create_tasks(
                grade=threshold,
                training_candidate_sets=[str(c) for c in s.candidate_sets],
                pot_fname=str(progress.potential),
                ts_fname=str(progress.training_set),
                atom_types=s.atom_types,
                run_params={"mtp_backend": s.mtp_backend},
            )
            q = sel.quantities
            workflow.log(
                f"{sel.label}: threshold {threshold:g}: {q['n_above']} of {q['n_candidates']} candidates "
                f"above, {q['n_selected']} selected (max grade {q['max_grade']:.3g})"
            )
            if not q["n_selected"]:
                break
            files = split_cfg(sel.path(SELECTED), s.inputs_dir / sel.label, s.atom_types)
            sp_runs = await reference_calculations(workflow, s, files)
            await train(
                workflow,
                s,
                progress,
                list(sp_runs),
                {
                    "stage": "select",
                    "iteration": iteration,
                    "threshold": threshold,
                    "select": sel.label,
                },
            )
        else:
            capped.append(threshold)
            workflow.log(
                f"select: threshold {threshold:g} still selects after {s.max_iterations} iterations"
            )
    return capped


async def md_select_and_calc_ts(workflow: Any, s: Any, progress: Progress) -> bool:
    """Stage 3: MD → sp_calc as each MD ends → train, until an iteration finds nothing.

    Each MD's picks go through the iteration's cross-MD filter
    (:mod:`autopot.activelearning.online_selection`; off with ``--no-cross-md-selection``)
    before they reach sp_calc. Returns True when converged (an iteration whose MDs
    collected nothing above gamma_min).
    """
    from autopot.activelearning.online_selection import restart_order

    starts: list[Path] = []
    for i, source in enumerate(s.md_configurations or [progress.training_set]):
        starts += split_cfg(source, s.inputs_dir / f"md_start_{i}", s.atom_types)
    for iteration in range(1, s.max_iterations + 1):
        md_runs = RunList([], workflow)
        for k, start in enumerate(starts):  # a distinct, reproducible seed per trajectory
            md_runs += workflow.md_select.create_tasks(
                cfg_fname=str(start),
                pot_fname=str(progress.potential),
                ts_fname=str(progress.training_set),
                atom_types=s.atom_types,
                md_args={**s.md_args, "seed": 1000 * iteration + k},
                select_args=s.select_args,
                run_params={"mtp_backend": s.mtp_backend},
            )
        cross = _CrossMD(workflow, s, progress) if s.cross_md_selection else None
        sp_runs = RunList([], workflow)
        collected = 0
        # no barrier: each MD's picks go out as it ends (after a restart, the MDs that had
        # already ended come first, in label order: see online_selection)
        async for md in restart_order(md_runs, s.inputs_dir, workflow):
            if md.failed:
                workflow.log(f"{md.label} failed: {md.cause}")
                continue
            q = md.quantities
            collected += q["n_collected"]
            workflow.log(
                f"{md.label}: {q['md_steps_done']} MD steps, {q['n_collected']} above gamma_min, "
                f"{q['n_selected']} selected{' (stopped at gamma_max)' if q['aborted'] else ''}"
            )
            if not q["n_selected"]:
                continue
            if cross is not None:
                files = await cross.dispatch(md)
            else:
                files = split_cfg(md.path(SELECTED), s.inputs_dir / md.label, s.atom_types)
            if files:
                sp_runs += workflow.sp_calc.create_tasks(
                    cfg_fname=[str(f) for f in files],
                    pot_fname=s.pot_fname,
                    run_params={"calculator": s.calculator, "atom_types": s.atom_types},
                )
        if cross is not None:
            await cross.close()
        if md_runs.failed and len(md_runs.failed) == len(md_runs):
            raise WorkflowError(
                f"every md_select run failed (first: {md_runs[0].label}: {md_runs[0].cause})",
                field="md_select",
            )
        record = {"cross_md": cross.stats.as_dict()} if cross is not None else {}
        if cross is not None:
            cross.log_iteration(iteration)
        if collected == 0:
            workflow.log(f"md_select iteration {iteration}: nothing above gamma_min: converged")
            return True
        if not sp_runs and cross is not None:  # the first MD's picks are dispatched, so
            # only when the .cfg round trip put them at gamma_min: nothing new to learn
            workflow.log(
                f"md_select iteration {iteration}: every pick was already covered; "
                "nothing to compute, next iteration"
            )
            continue
        await sp_runs.settled()
        finished = sp_runs.finished
        if not finished:
            raise WorkflowError("every sp_calc of this MD iteration failed", field="sp_calc")
        await train(
            workflow,
            s,
            progress,
            finished,
            {"stage": "md_select", "iteration": iteration, "md_select": md_runs.labels},
            record=record,
        )
    workflow.log(f"md_select: not converged after {s.max_iterations} iterations")
    return False


class _CrossMD:
    """The cross-MD filter of one iteration, as the stage uses it: the active set is built
    in a thread while the MDs run; each MD's picks are graded in a thread, written, and
    counted; one log line per MD."""

    def __init__(self, workflow: Any, s: Any, progress: Progress) -> None:
        from autopot.activelearning.online_selection import CrossMDSelection, CrossMDStats

        self.workflow, self.s = workflow, s
        self.stats = CrossMDStats()
        self.selection = CrossMDSelection(
            progress.potential,
            progress.training_set,
            s.atom_types,
            s.mtp_backend,
            s.select_args["gamma_min"],
        )
        self._built: asyncio.Task[float] = asyncio.ensure_future(
            asyncio.to_thread(self.selection.prepare)
        )

    async def dispatch(self, md: RunView) -> list[Path]:
        """The files of ``md``'s picks that go to sp_calc (written before they are returned)."""
        from autopot.activelearning.online_selection import dispatched_before, write_picks
        from autopot.mtp.cfg import read_cfg

        self.stats.build_s = await self._built
        directory = self.s.inputs_dir / md.label
        picks = read_cfg(md.path(SELECTED), self.s.atom_types)
        forced = dispatched_before(directory)
        decision = await asyncio.to_thread(self.selection.offer, picks, forced)
        self.stats.add(decision)
        self.workflow.log(
            f"{md.label}: cross-MD selection: {len(picks)} picked, "
            f"{len(decision.dispatched)} dispatched"
            + (f" ({len(decision.forced)} before a restart)" if decision.forced else "")
            + f", {decision.dropped} dropped (max grade "
            f"{float(decision.grades.max()) if len(decision.grades) else 0.0:.3g} against this "
            f"iteration's active set; {decision.seconds:.2f} s)"
        )
        return write_picks(picks, decision.dispatched, directory, self.s.atom_types)

    async def close(self) -> None:
        """Wait for the active-set build even if no MD picked anything (no stray thread)."""
        self.stats.build_s = await self._built

    def log_iteration(self, iteration: int) -> None:
        st = self.stats
        if st.picked:
            self.workflow.log(
                f"md_select iteration {iteration}: cross-MD selection dispatched {st.dispatched} "
                f"of {st.picked} picks, dropped {st.dropped} ({st.grade_s:.2f} s grading, "
                f"{st.build_s:.2f} s building the active set)"
            )


async def run_stages(workflow: Any, s: Any) -> dict[str, Any]:
    """The whole AutoPot workflow; returns (and records) its summary."""
    t0 = time.time()
    if s.preset:
        from autopot.activelearning.demo import generate

        generate(s)
        workflow.log(f"demo preset {s.preset!r}: inputs in {s.inputs_dir / 'demo'}")
    if s.potential is None:
        from autopot.mtp.generator import generate_untrained_mtp

        s.potential = s.inputs_dir / f"untrained_{s.level:02d}.mtp"
        s.inputs_dir.mkdir(parents=True, exist_ok=True)
        generate_untrained_mtp(s.level, len(s.atom_types.split(",")), path=s.potential)
    progress = Progress(
        potential=s.potential,
        training_set=s.training_set or s.potential,
        initial_potential=s.potential,
    )
    workflow.update_summary(
        settings={
            "atom_types": s.atom_types,
            "grades": s.grades,
            "preset": s.preset,
            "calculator": s.calculator,
            "pot_fname": s.pot_fname,
            "md_args": s.md_args,
            "select_args": s.select_args,
            "train_args": s.train_args,
            "cross_md_selection": s.cross_md_selection,
        }
    )
    if s.calculate_ts:
        await calculate_ts(workflow, s, progress)
    elif s.training_set is not None:
        progress.training_set = s.training_set
        from autopot.mtp.mtpfile import is_trained, read_mtp

        if not is_trained(read_mtp(s.potential)):
            await train(workflow, s, progress, [], {"stage": "initial", "iteration": 0})
    converged, why = None, ""
    if s.select:
        capped = await select_and_calc_ts(workflow, s, progress)
        converged = not capped
        why = (
            f"selection still finds configurations above {capped} after --max-iterations"
            if capped
            else ""
        )
    if s.md_select:  # the MD stage is the final word: nothing uncertain left along MD
        converged = await md_select_and_calc_ts(workflow, s, progress)
        why = (
            ""
            if converged
            else f"MD still finds configurations above gamma_min after {s.max_iterations} iterations"
        )
    if s.fresh_potential and progress.iterations:
        await train(workflow, s, progress, [], {"stage": "fresh", "iteration": 0}, fresh=True)
    validation = await validate(workflow, s, progress, converged)
    summary = {
        "converged": converged,
        "why": why,
        "potential": str(progress.potential),
        "training_set": str(progress.training_set),
        "reference_calls": progress.reference_calls,
        "iterations": progress.iterations,
        "wall_s": round(time.time() - t0, 1),
        "validation": validation,
        # for the runner's final line ("converged, 11 of 12 properties within tolerance")
        "verdict": (validation or {}).get("text", ""),
    }
    workflow.update_summary(**summary)
    print_summary(summary)
    return summary


async def validate(
    workflow: Any, s: Any, progress: Progress, converged: bool | None
) -> dict[str, Any] | None:
    """Stage 4: the validation suite with the final potential and the reference, and the
    held-out errors of every potential (autopot.validation). Only a converged workflow is
    validated: an unconverged potential is not the result, and its verdict would mislead."""
    if not s.validate or s.validation_suite_loaded is None:
        if s.validate and s.validation_skip:
            workflow.log(s.validation_skip)
        return {"skipped": s.validation_skip or "--no-validate"}
    if not converged or not progress.iterations:
        workflow.log("validation: skipped (the active learning did not converge)")
        return {"skipped": "not converged"}
    from autopot.validation.api import summary_part, validation_stage

    return summary_part(await validation_stage(workflow, s, progress))


def print_summary(summary: dict[str, Any]) -> None:
    """The summary on stdout (the command's result) and in the workflow's log file."""
    lines = [
        "",
        "AutoPot summary",
        f"  {'train run':<11} {'stage':<13} {'iter':>4} {'threshold':>9} {'added':>5} {'ts size':>7} "
        f"{'E RMSE meV/at':>13} {'F RMSE meV/A':>12}",
    ]
    for it in summary["iterations"]:
        e = it["errors"].get("energy_rmse_per_atom")
        f = it["errors"].get("forces_rmse")
        lines.append(
            f"  {it['train']:<11} {it['stage']:<13} {it.get('iteration', 0):>4} "
            f"{it.get('threshold', ''):>9} {it['n_added']:>5} {it['ts_size'] or 0:>7} "
            f"{'' if e is None else f'{e * 1000:.2f}':>13} {'' if f is None else f'{f * 1000:.1f}':>12}"
        )
    state = {
        True: "converged",
        False: f"NOT converged ({summary.get('why')})",
        None: "no convergence criterion (no MD stage)",
    }[summary["converged"]]
    validation = summary.get("validation") or {}
    if validation.get("rows"):
        from autopot.validation.table import text_lines

        lines += ["", f"  Validation of {validation['potential']} against the reference"]
        lines += [f"  {line}" for line in text_lines(validation["rows"])]
        state += f", {validation['text']}"
    lines += [
        f"  {state}; {summary['reference_calls']} reference calculations; {summary['wall_s']} s",
        f"  potential:    {summary['potential']}",
        f"  training set: {summary['training_set']}",
        "",
    ]
    text = "\n".join(lines)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    log.info("%s", text, extra={"console": False})
