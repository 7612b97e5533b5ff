"""Validation: the suite's simulations for several calculators, compared with the reference.

Every simulation is a recorded task run (:mod:`autopot.simulate`), identified by task
source + inputs, so the reference side of a suite is computed once per workflow
directory: validating the next potential (or another model) recalls it from the store.

Two runners execute the same plan: :class:`ApiRunner` (the simulate API, one call after
another: the CLI, benchmarks, notebooks) and :class:`EngineRunner` (inside a running
AutoPot orchestrator, through its engine, every simulation submitted at once).
"""

from __future__ import annotations

import asyncio
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autopot.validation.suite import HELDOUT, Suite

if TYPE_CHECKING:
    from ase import Atoms

    from autopot.store.workflow_records import WorkflowRecords

log = logging.getLogger("autopot.validation")

REFERENCE = "reference"


@dataclass
class Request:
    """One simulation of the plan: which calculator (its name in the table), what to run."""

    side: str
    task: str
    structure: Atoms
    params: dict[str, Any]


@dataclass
class Outcome:
    result: dict[str, Any]
    run: str
    cached: bool
    run_dir: Path | None = None
    error: str = ""  # why there is no result (a failed run): the row says n/a, not a crash


@dataclass
class Plan:
    """What a validation runs: simulations per calculator and the held-out MD."""

    suite: Suite
    calculators: dict[str, dict[str, Any]]  # side -> resolved calculator spec
    requests: list[Request] = field(default_factory=list)
    heldout: list[Request] = field(default_factory=list)
    temperatures_K: list[float] = field(default_factory=list)


def make_plan(
    suite: Suite,
    bulk: Atoms,
    calculators: dict[str, dict[str, Any]],
    *,
    training_temperature_K: float | None,
) -> Plan:
    """Every simulation the suite needs, for every calculator (the reference included)."""
    plan = Plan(suite, calculators)
    for side in calculators:
        for task in suite.needed():
            plan.requests.append(Request(side, task, bulk, dict(suite.simulations.get(task, {}))))
    if suite.wants_heldout and REFERENCE in calculators:
        h = suite.heldout
        base = training_temperature_K or 300.0
        cell = bulk.repeat(tuple(h["supercell"]))
        for k, factor in enumerate(h["temperatures"]):
            temperature = round(base * float(factor), 3)
            plan.temperatures_K.append(temperature)
            params = {
                "ensemble": "langevin",
                "steps": h["steps"],
                "timestep_fs": h["timestep_fs"],
                "temperature_K": temperature,
                "interval": h["interval"],
                "seed": 7919 + k,  # fixed: the held-out set is the same for every potential
            }
            plan.heldout.append(Request(REFERENCE, "md", cell, params))
    return plan


# ---------------------------------------------------------------------------- runners
class ApiRunner:
    """Each request through the simulate API (recalled from the store when recorded)."""

    def __init__(self, workflow_dir: Path):
        self.workflow_dir = Path(workflow_dir)

    def run(self, plan: Plan, requests: Sequence[Request]) -> list[Outcome]:
        from autopot.errors import AutopotError
        from autopot.simulate.api import simulate

        out = []
        for req in requests:
            try:
                result = simulate(
                    req.task,
                    {"structure": req.structure},
                    plan.calculators[req.side],
                    workflow=self.workflow_dir,
                    **req.params,
                )
            except AutopotError as exc:  # the simulation failed: a finding, recorded as such
                if exc.exit_code == 2 and "did not finish" not in exc.message:
                    raise  # bad input stays bad input
                log.warning("%s of %s: %s", req.task, req.side, exc)
                out.append(Outcome({}, "", False, error=str(exc)))
                continue
            out.append(Outcome(dict(result), result.run, result.cached))
        if any(r.task == "md" and o.run for r, o in zip(requests, out, strict=True)):
            from autopot.store.workflow_records import WorkflowRecords

            with WorkflowRecords.open(self.workflow_dir, require_run=False) as records:
                for req, outcome in zip(requests, out, strict=True):
                    if req.task == "md" and outcome.run:
                        outcome.run_dir = records.run_dir(records.run(outcome.run))
        return out


class EngineRunner:
    """Inside a running orchestrator: the simulations become task runs of its engine.

    The AutoPot motoko.yaml declares only its own four task managers; the simulation ones
    are added to this workflow object (same templates as the simulate API, so the same
    job identities: what the stage computes is what ``autopot validate`` recalls).
    """

    def __init__(self, workflow: Any):
        self.workflow = workflow
        add_simulation_managers(workflow)

    async def run(self, plan: Plan, requests: Sequence[Request]) -> list[Outcome]:
        from autopot.engine.core import WorkflowStopped
        from autopot.simulate import flow, tasks
        from autopot.simulate.api import prepare

        wf = self.workflow
        jobs = []
        for req in requests:
            job, atoms = prepare(
                req.task,
                {"structure": req.structure},
                plan.calculators[req.side],
                req.params,
                Path(wf.directory),
            )
            tasks.store_structure(Path(wf.directory), atoms["structure"])
            jobs.append(job)
        wf.store.sync()
        recorded = [
            tasks.finished_run(wf.store.root, r.task, j) is not None
            for r, j in zip(requests, jobs, strict=True)
        ]
        labels = await asyncio.gather(
            *(
                flow.ensure(wf, req.task, job, False, {})
                for req, job in zip(requests, jobs, strict=True)
            ),
            return_exceptions=True,
        )
        wf.store.sync()
        records = wf.records
        out = []
        for req, label, was_recorded in zip(requests, labels, recorded, strict=True):
            if isinstance(label, BaseException):
                if not isinstance(label, Exception) or isinstance(label, WorkflowStopped):
                    raise label  # cancellation, stop request
                log.warning("%s of %s failed: %s", req.task, req.side, label)
                out.append(Outcome({}, "", False, error=str(label)))
                continue
            run = records.run(label)
            out.append(
                Outcome(
                    dict(run.quantities),
                    label,
                    cached=was_recorded,
                    run_dir=records.run_dir(run) if req.task == "md" else None,
                )
            )
        return out


def add_simulation_managers(workflow: Any) -> None:
    """Give a running AutoPot workflow the simulation task managers it does not declare
    (the workflow's default executor; MD resumable once, as in the simulate API)."""
    from autopot.engine.motoko import TaskManagerConfig
    from autopot.engine.workflow import TaskManager
    from autopot.simulate import tasks

    for name in tasks.TASKS:
        if name in workflow.managers:
            continue
        config = TaskManagerConfig(
            name=name,
            template=tasks.TEMPLATES / name,
            executor=dict(workflow.config.executor),
            retries=1 if name == "md" else 0,
        )
        schema = tasks.schema(name)
        workflow.config.task_managers[name] = config
        workflow.schemas[name] = schema
        workflow.managers[name] = TaskManager(workflow, config, schema)


# ---------------------------------------------------------------------------- held-out
def heldout_frames(outcomes: Sequence[Outcome], equilibration: int, interval: int) -> list[Atoms]:
    """Reference MD frames after equilibration, with the reference's energy, forces, stress."""
    from ase.io import read

    frames: list[Atoms] = []
    for outcome in outcomes:
        if outcome.run_dir is None:  # the MD failed: fewer held-out frames
            continue
        traj = read(outcome.run_dir / str(outcome.result.get("trajectory") or "md.traj"), index=":")
        assert isinstance(traj, list)
        for i, atoms in enumerate(traj):
            step = int(atoms.info.get("md_step", i * interval))
            if step >= equilibration:
                atoms.info["heldout_run"] = outcome.run
                frames.append(atoms)
    return frames


def evaluate(spec: dict[str, Any], frames: Sequence[Atoms]) -> list[Atoms]:
    """``frames`` as the calculator of ``spec`` sees them (single points, in-process)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from autopot.reference.calculators import make_calculator

    with tempfile.TemporaryDirectory(prefix="autopot-heldout-") as tmp:
        calc = make_calculator(spec, directory=Path(tmp))
        out = []
        for atoms in frames:
            work = atoms.copy()
            work.calc = calc
            results = {
                "energy": work.get_potential_energy(),
                "forces": work.get_forces(),
                "stress": work.get_stress(),
            }
            work.calc = SinglePointCalculator(work, **results)
            out.append(work)
    return out


def heldout_errors(
    spec: dict[str, Any], frames: Sequence[Atoms], *, parity: bool = False
) -> dict[str, Any]:
    """Energy/force/stress errors on the held-out frames (MLIP-2's definitions, as the
    training errors), plus the parity data when asked."""
    import numpy as np

    from autopot.mtp.error_report import compute_errors

    predicted = evaluate(spec, frames)
    errors = {k: _finite(v) for k, v in compute_errors(frames, predicted).items()}
    if parity:
        errors["parity"] = {
            "energy_per_atom_ref": [float(a.get_potential_energy()) / len(a) for a in frames],
            "energy_per_atom_pred": [float(a.get_potential_energy()) / len(a) for a in predicted],
            "forces_ref": np.concatenate([a.get_forces().ravel() for a in frames]).tolist(),
            "forces_pred": np.concatenate([a.get_forces().ravel() for a in predicted]).tolist(),
        }
    return errors


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


# ---------------------------------------------------------------------------- the table
def table(
    plan: Plan,
    outcomes: dict[tuple[str, str], Outcome],
    side: str,
    heldout: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The paper's Table 2 for ``side``: property | MTP | reference | rel. error | tolerance | pass."""
    rows = []
    for prop in plan.suite.properties:
        value = reference = None
        runs: dict[str, str] = {}
        if prop.simulation == HELDOUT:
            raw = (heldout or {}).get(prop.key)
            value = None if raw is None else float(raw) * prop.scale
            runs = {"reference": ", ".join((heldout or {}).get("runs", []))}
        else:
            mine, ref = (
                outcomes.get((side, prop.simulation)),
                outcomes.get((REFERENCE, prop.simulation)),
            )
            value = _scaled(mine.result.get(prop.key) if mine else None, prop.scale)
            reference = _scaled(ref.result.get(prop.key) if ref else None, prop.scale)
            runs = {k: o.run for k, o in (("value", mine), ("reference", ref)) if o is not None}
        rel = (
            abs(value - reference) / abs(reference)
            if value is not None and reference not in (None, 0.0)
            else None
        )
        assert rel is None or reference is not None
        rows.append(
            {
                "property": prop.name,
                "unit": prop.unit,
                "value": value,
                "reference": reference,
                "abs_err": abs(value - reference)
                if value is not None and reference is not None
                else None,
                "rel_err": rel,
                "tolerance": prop.tolerance_text(),
                "pass": prop.passes(value, reference),
                "runs": runs,
            }
        )
    return rows


def _scaled(value: Any, scale: float) -> float | None:
    if value is None:
        return None
    try:
        out = float(value) * scale
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def verdict(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts for the summary line: "7 of 8 properties within tolerance"."""
    within = [r["property"] for r in rows if r["pass"] is True]
    missed = [r["property"] for r in rows if r["pass"] is False]
    missing = [r["property"] for r in rows if r["pass"] is None]
    rels = [r["rel_err"] for r in rows if r["rel_err"] is not None]
    return {
        "properties": len(rows),
        "within_tolerance": len(within),
        "missed": missed,
        "no_data": missing,
        "mean_rel_err": sum(rels) / len(rels) if rels else None,
        "text": f"{len(within)} of {len(rows)} properties within tolerance",
    }


# ---------------------------------------------------------------------------- one potential
def mtp_spec(records: WorkflowRecords, run: Any) -> dict[str, Any]:
    """A train run's potential as ``resolve_spec("train.N")`` gives it (same identity)."""
    from autopot.tasklib import POTENTIAL

    return {
        "calculator": "mtp",
        "potential": str(records.run_dir(run) / POTENTIAL),
        "atom_types": run.job.params.get("atom_types"),
        "train_run": run.label,
    }


def heldout_per_train(
    records: WorkflowRecords, frames: Sequence[Atoms], trains: Sequence[Any]
) -> list[dict[str, Any]]:
    """Held-out errors of every potential the workflow produced: validation error per
    iteration, beside the training error the train runs recorded."""
    out = []
    for run in trains:
        try:
            errors = heldout_errors(mtp_spec(records, run), frames)
        except Exception as exc:  # noqa: BLE001 - an unreadable early potential is not fatal
            log.warning("held-out errors of %s: %s", run.label, exc)
            continue
        q = dict(run.quantities)
        out.append(
            {
                "train": run.label,
                "ts_size": q.get("ts_size"),
                "heldout": {k: v for k, v in errors.items() if k in _ERROR_KEYS},
                "training": {k: q.get(k) for k in _ERROR_KEYS if q.get(k) is not None},
            }
        )
    return out


_ERROR_KEYS = (
    "energy_rmse_per_atom",
    "energy_mae_per_atom",
    "forces_rmse",
    "forces_mae",
    "stress_rmse",
    "stress_mae",
)


def assemble(
    plan: Plan,
    requests: Sequence[Request],
    results: Sequence[Outcome],
    sides: Sequence[str],
    heldout: dict[str, dict[str, Any]],
    *,
    started: float,
) -> dict[str, dict[str, Any]]:
    """Per side (potential/model): its table, verdict, runs and which were recalled."""
    by_key = {(r.side, r.task): o for r, o in zip(requests, results, strict=True)}
    out = {}
    for side in sides:
        rows = table(plan, by_key, side, heldout.get(side))
        out[side] = {
            "rows": rows,
            **verdict(rows),
            "runs": {t: o.run for (s, t), o in by_key.items() if s == side},
            "reference_runs": {t: o.run for (s, t), o in by_key.items() if s == REFERENCE},
            "cached": {
                f"{s}.{t}": o.cached for (s, t), o in by_key.items() if s in (side, REFERENCE)
            },
            "wall_s": round(time.time() - started, 2),
        }
    return out
