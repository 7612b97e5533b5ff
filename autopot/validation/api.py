"""Validate one potential of a workflow: ``autopot validate`` and the orchestrator's stage.

Both compute the suite with the potential and with the workflow's reference calculator
as simulation runs in the workflow's own store, and a held-out set (reference MD at the
training temperature and above, generated after the active learning, so never trained
on) on which every train run's potential is scored. The result is written to
``<workflow>/validation/<run name>/<potential>.json`` and returned.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autopot.errors import AutopotError
from autopot.validation import core
from autopot.validation.suite import Suite, load_suite

if TYPE_CHECKING:
    from autopot.store.workflow_records import WorkflowRecords

log = logging.getLogger("autopot.validation")

RESULTS_DIR = "validation"


def results_path(workflow_dir: Path, run_name: str, name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return Path(workflow_dir) / RESULTS_DIR / run_name / f"{safe}.json"


def reference_spec(
    summary: dict[str, Any], records: WorkflowRecords | None = None
) -> dict[str, Any]:
    """The workflow's reference calculator (with its INCAR/EAM file) as a simulation spec."""
    from autopot.reference.calculators import resolve_spec

    settings = summary.get("settings") or {}
    spec = dict(settings.get("calculator") or {})
    if not spec and records is not None:
        for run in records.runs("sp_calc"):
            spec = dict(run.params.get("calculator") or {})
            if spec:
                break
    if not spec:
        raise AutopotError(
            "the workflow records no reference calculator; pass --reference", field="calculator"
        )
    pot_fname = settings.get("pot_fname")
    if pot_fname is None and records is not None:
        sp = records.runs("sp_calc")
        pot_fname = sp[0].job.params.get("pot_fname") if sp else None
    if pot_fname:
        spec["pot_fname"] = pot_fname
    return resolve_spec(spec)


def training_temperature(summary: dict[str, Any]) -> float | None:
    md_args = (summary.get("settings") or {}).get("md_args") or {}
    value = md_args.get("temperature_K")
    if isinstance(value, (list, tuple)):
        value = max(value)
    return float(value) if value is not None else None


def validate(
    workflow: str | Path | None = None,
    *,
    potential: str | None = None,
    calculator: Any = None,
    suite: str | Path | Suite | None = None,
    reference: Any = None,
    run_name: str | None = None,
    per_train: bool = True,
) -> dict[str, Any]:
    """Validate ``potential`` (a train label; default the last) or any ``calculator`` spec
    against the workflow's reference; see the module docstring."""
    from autopot.reference.calculators import resolve_spec
    from autopot.store.workflow_records import WorkflowRecords

    t0 = time.time()
    if potential is not None and calculator is not None:
        raise AutopotError("give --potential or --calculator, not both", field="potential")
    with WorkflowRecords.open(workflow, run_name) as records:
        directory, run_name = records.directory, records.run_name
        summary = records.summary
        atom_types = records.atom_types()
        ref = (
            resolve_spec(reference, workflow_dir=directory)
            if reference
            else reference_spec(summary, records)
        )
        if calculator is None:
            run = records.run(potential) if potential else records.last_train()
            if run.task != "train" or run.state != "FINISHED":
                raise AutopotError(f"{run.label} is not a finished train run", field="potential")
            name, spec = run.label, core.mtp_spec(records, run)
        else:
            name = (
                calculator
                if isinstance(calculator, str)
                else json.dumps(calculator, sort_keys=True)
            )
            spec = resolve_spec(calculator, workflow_dir=directory)
    the_suite = suite if isinstance(suite, Suite) else load_suite(suite, atom_types=atom_types)
    plan = core.make_plan(
        the_suite,
        the_suite.bulk(atom_types),
        {name: spec, core.REFERENCE: ref},
        training_temperature_K=training_temperature(summary),
    )
    runner = core.ApiRunner(directory)
    results = runner.run(plan, plan.requests)
    held = runner.run(plan, plan.heldout) if plan.heldout else []
    heldout = _heldout(plan, held, {name: spec}, directory, run_name if per_train else None)
    out = _result(plan, results, held, heldout, name, ref, run_name, t0)
    write_result(directory, run_name, name, out)
    return out


def _heldout(
    plan: core.Plan,
    held: list[core.Outcome],
    specs: dict[str, dict[str, Any]],
    directory: Path,
    run_name: str | None,
    records: WorkflowRecords | None = None,
) -> dict[str, dict[str, Any]]:
    """Held-out errors per side (with parity data) and, for the first side, per train run."""
    if not held:
        return {}
    h = plan.suite.heldout
    frames = core.heldout_frames(held, h["equilibration"], h["interval"])
    if not frames:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for side, spec in specs.items():
        errors = core.heldout_errors(spec, frames, parity=True)
        out[side] = {
            **errors,
            "runs": [o.run for o in held if o.run],
            "temperatures_K": plan.temperatures_K,
            "n_frames": len(frames),
            "n_atoms": len(frames[0]) if frames else 0,
        }
    if run_name is not None and specs:
        first = next(iter(out))
        if records is not None:
            trains = records.runs("train", finished_only=True)
            out[first]["per_train"] = core.heldout_per_train(records, frames, trains)
        else:
            from autopot.store.workflow_records import WorkflowRecords

            with WorkflowRecords.open(directory, run_name) as recs:
                trains = recs.runs("train", finished_only=True)
                out[first]["per_train"] = core.heldout_per_train(recs, frames, trains)
    return out


def _result(
    plan: core.Plan,
    results: list[core.Outcome],
    held: list[core.Outcome],
    heldout: dict[str, dict[str, Any]],
    name: str,
    ref: dict[str, Any],
    run_name: str,
    t0: float,
) -> dict[str, Any]:
    per_side = core.assemble(plan, plan.requests, results, [name], heldout, started=t0)[name]
    reference_runs = [
        o for r, o in zip(plan.requests, results, strict=True) if r.side == core.REFERENCE
    ]
    reference_runs += held
    return {
        "workflow_run": run_name,
        "potential": name,
        "calculator": plan.calculators[name],
        "reference": ref,
        "suite": plan.suite.to_dict(),
        **per_side,
        "reference_cached": sum(o.cached for o in reference_runs),
        "reference_total": len(reference_runs),
        "heldout": heldout.get(name, {}),
        "wall_s": round(time.time() - t0, 2),
    }


def write_result(directory: Path, run_name: str, name: str, result: dict[str, Any]) -> Path:
    from autopot.atomic import atomic_write_text

    path = results_path(directory, run_name, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(_jsonable(result), indent=1) + "\n")
    return path


def latest_result(directory: Path, run_name: str) -> dict[str, Any] | None:
    """The newest validation written for this workflow run (None: never validated)."""
    folder = Path(directory) / RESULTS_DIR / run_name
    files = (
        sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    )
    if not files:
        return None
    data: dict[str, Any] = json.loads(files[-1].read_text())
    data["file"] = str(files[-1])
    return data


def summary_part(result: dict[str, Any]) -> dict[str, Any]:
    """What the workflow summary keeps (no parity arrays: they stay in the JSON file)."""
    heldout = {k: v for k, v in result.get("heldout", {}).items() if k != "parity"}
    return {
        **{k: v for k, v in result.items() if k not in ("heldout", "suite")},
        "heldout": heldout,
    }


def _jsonable(value: Any) -> Any:
    import math

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------- the stage
async def validation_stage(workflow: Any, s: Any, progress: Any) -> dict[str, Any]:
    """The orchestrator's last stage: validate the final potential (see module docstring)."""
    t0 = time.time()
    records = workflow.records
    workflow.store.sync()
    run = records.last_train()
    name, spec = run.label, core.mtp_spec(records, run)
    ref = {**s.calculator, **({"pot_fname": s.pot_fname} if s.pot_fname else {})}
    from autopot.reference.calculators import resolve_spec

    ref = resolve_spec(ref)
    suite = s.validation_suite_loaded
    plan = core.make_plan(
        suite,
        suite.bulk(s.atom_types),
        {name: spec, core.REFERENCE: ref},
        training_temperature_K=s.md_args.get("temperature_K"),
    )
    workflow.log(
        f"validation of {name}: {len(plan.requests)} simulations, {len(plan.heldout)} held-out MD"
        f" ({suite.source})"
    )
    runner = core.EngineRunner(workflow)
    results, held = await asyncio_gather(runner, plan)
    workflow.store.sync()
    heldout = _heldout(
        plan, held, {name: spec}, Path(workflow.directory), workflow.run_name, workflow.records
    )
    out = _result(plan, results, held, heldout, name, ref, workflow.run_name, t0)
    path = write_result(Path(workflow.directory), workflow.run_name, name, out)
    out["file"] = str(path)
    workflow.log(
        f"validation of {name}: {out['text']}"
        + (f" (missed: {', '.join(out['missed'])})" if out["missed"] else "")
        + f"; {out['reference_cached']} of {out['reference_total']} reference runs recalled; "
        f"{out['wall_s']} s"
    )
    return out


async def asyncio_gather(
    runner: core.EngineRunner, plan: core.Plan
) -> tuple[list[core.Outcome], list[core.Outcome]]:
    """Suite simulations and held-out MD side by side (one executor queue)."""
    import asyncio

    results, held = await asyncio.gather(
        runner.run(plan, plan.requests), runner.run(plan, plan.heldout)
    )
    return results, held
