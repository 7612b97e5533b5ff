"""The recorded simulation API (MLIP Arena's style)::

    from autopot.simulate import EOS
    result = EOS(atoms=atoms, calculator="emt")            # a dict; result.run == "eos.3"

Every call is a task run in a workflow's store (by default an embedded one in
``./autopot-simulate``, or ``workflow=`` any workflow directory, e.g. the AutoPot run's,
so that its potentials and their validation sit in one database). A second identical call
returns the recorded result without starting anything; ``refresh=True`` makes a new run
of the same job. All input is checked — structure, calculator, every parameter — before
anything is written.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from autopot.errors import AutopotError, WorkflowError
from autopot.simulate import tasks
from autopot.simulate.common import SimulationError, read_structure, structure_sha256

log = logging.getLogger("autopot.simulate")
_calls = itertools.count(1)


class SimulationResult(dict):
    """The result dict, plus where it is recorded (``run``: its label) and whether it was
    taken from the store (``cached``)."""

    run: str = ""
    cached: bool = False
    workflow_dir: Path | None = None


def _module(task: str) -> Any:
    import importlib

    name = "neb" if task == "neb_from_endpoints" else task
    return importlib.import_module(f"autopot.simulate.{name}")


def _check_params(task: str, params: dict[str, Any]) -> dict[str, Any]:
    module = _module(task)
    checked = (
        module.check_endpoints(params) if task == "neb_from_endpoints" else module.check(params)
    )
    if task == "md":  # one stored form per schedule: [start, end] (a number is constant)
        for key in ("temperature_K", "pressure_GPa"):
            value = checked[key]
            checked[key] = (
                [float(v) for v in value]
                if isinstance(value, (list, tuple))
                else [float(value), float(value)]
            )
    return checked


def prepare(
    task: str,
    structures: dict[str, Any],
    calculator: Any,
    params: dict[str, Any],
    workflow_dir: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(job parameters, {job param: Atoms or [Atoms]}): everything checked, nothing written."""
    from autopot.reference.calculators import make_calculator, resolve_spec, spec_file_digests

    if task not in tasks.TASKS:
        raise SimulationError(
            f"unknown simulation {task!r}; use one of {', '.join(tasks.TASKS)}", field="task"
        )
    checked = _check_params(task, dict(params))
    atoms: dict[str, Any] = {}
    for name, source in structures.items():
        if name == "images":
            if not isinstance(source, (list, tuple)) or len(source) < 2:
                raise SimulationError("expected a list of at least two structures", field="images")
            atoms[name] = [read_structure(s, field=f"images[{i}]") for i, s in enumerate(source)]
        else:
            atoms[name] = read_structure(source, field=name)
    check_structure = getattr(_module(task), "check_structure", None)
    if check_structure is not None:
        check_structure(atoms["structure"])
    if task == "neb":
        from autopot.simulate.neb import check_images

        check_images(atoms["images"])
    if task == "neb_from_endpoints":
        from autopot.simulate.neb import check_images

        check_images([atoms["structure"], atoms["final"]], field="final")
    spec = resolve_spec(calculator, workflow_dir=workflow_dir)
    with tempfile.TemporaryDirectory(prefix="autopot-calc-check-") as tmp:
        make_calculator(spec, directory=Path(tmp))  # unimportable, bad kwargs, missing files
    job: dict[str, Any] = {"calculator": spec, "calculator_files": spec_file_digests(spec)}
    for name, value in atoms.items():
        job[name] = (
            [structure_sha256(a) for a in value] if name == "images" else structure_sha256(value)
        )
    job.update(checked)
    if task in tasks.COMPOSED:
        job["parts_source"] = ",".join(tasks.schema(t).source_hash for t in tasks.COMPOSED[task])
    tasks.schema(task).validate_job(job)
    return job, atoms


def simulate(
    task: str,
    structures: dict[str, Any],
    calculator: Any = "emt",
    *,
    workflow: str | Path | None = None,
    refresh: bool = False,
    executor: str | dict[str, Any] = "local",
    slurm_options: dict[str, Any] | None = None,
    **params: Any,
) -> SimulationResult:
    """Run (or recall) one simulation as a recorded task run; see the module docstring."""
    from autopot.locate import resolve_workflow_dir

    workflow_dir = (
        resolve_workflow_dir(workflow) if workflow is not None else tasks.default_workflow_dir()
    )
    job, atoms = prepare(task, structures, calculator, params, workflow_dir)
    executor_spec = {"name": executor} if isinstance(executor, str) else dict(executor)
    if executor_spec.get("name") not in ("local", "slurm") and ":" not in str(
        executor_spec.get("name")
    ):
        raise SimulationError(
            f"unknown executor {executor_spec.get('name')!r}; use local or slurm", field="executor"
        )
    run_params = {"slurm_options": dict(slurm_options)} if slurm_options else {}
    tasks.schema(task).validate_run(run_params)  # before anything is recorded
    if not refresh:
        hit = _recorded(workflow_dir, task, job)
        if hit is not None:
            return hit
    for value in atoms.values():
        for a in value if isinstance(value, list) else [value]:
            tasks.store_structure(workflow_dir, a)
    label = _orchestrate(workflow_dir, task, job, refresh, executor_spec, run_params)
    result = _result(workflow_dir, label)
    result.cached = False
    return result


def _recorded(workflow_dir: Path, task: str, job: dict[str, Any]) -> SimulationResult | None:
    from autopot.store.database import WorkflowPaths, open_store

    if not WorkflowPaths(workflow_dir).db_dir.is_dir():
        return None
    try:
        db = open_store(workflow_dir, read_only=True)
    except AutopotError:  # another call is creating the database right now: not recorded yet
        return None
    with db:
        run = tasks.finished_run(db.root, task, job)
        if run is None:
            return None
        out = SimulationResult(run.quantities)
        out.run, out.cached, out.workflow_dir = run.label, True, workflow_dir
    log.info("%s: recorded result of %s (same task source and inputs)", task, out.run)
    return out


def _result(workflow_dir: Path, label: str) -> SimulationResult:
    from autopot.store.database import open_store
    from autopot.store.records import get_run

    with open_store(workflow_dir, read_only=True) as db:
        run = get_run(db.root, label)
        out = SimulationResult(run.quantities)
    out.run, out.workflow_dir = label, workflow_dir
    return out


def _orchestrate(
    workflow_dir: Path,
    task: str,
    job: dict[str, Any],
    refresh: bool,
    executor: dict[str, Any],
    run_params: dict[str, Any],
) -> str:
    """One orchestrator run of :mod:`autopot.simulate.flow`; the label of the result run."""
    import asyncio

    from autopot.engine.runner import run_orchestrator

    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    if in_loop or threading.current_thread() is not threading.main_thread():
        # Jupyter's running loop, or a worker thread: the engine needs its own loop and the
        # main thread's signal handlers, so it runs in a child process
        return _orchestrate_in_subprocess(workflow_dir, task, job, refresh, executor, run_params)
    motoko = tasks.write_motoko(workflow_dir, executor)
    run_name = f"simulate-{task}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(_calls)}"
    out = io.StringIO()
    t0 = time.perf_counter()
    params = {
        "task": task,
        "job": job,
        "refresh": refresh,
        "run_params": run_params,
        "simulation": True,
    }
    for attempt in range(20):
        _wait_for_other_simulations(workflow_dir)
        try:
            with contextlib.redirect_stdout(out):  # the runner's progress lines go to the log
                status = run_orchestrator(motoko, run_name=run_name, params=params)
            break
        except WorkflowError as exc:  # lost the race for the lock to another simulation
            if "already running" not in str(exc) or attempt == 19:
                raise
    for line in out.getvalue().splitlines():
        log.info("%s", line)
    label, last = _read_outcome(workflow_dir, run_name)
    if status != 0 or not label:
        raise SimulationError(f"{task} did not finish: {last}", file=workflow_dir, field=task)
    log.info("%s: %s finished in %.1f s", task, label, time.perf_counter() - t0)
    return label


def _disconnected(exc: BaseException) -> bool:
    """The simulation orchestrator that served the directory has ended (parallel calls
    share it): read again."""
    from autopot.store.database import disconnected

    return disconnected(exc)


def _read_outcome(workflow_dir: Path, run_name: str, attempts: int = 50) -> tuple[str | None, str]:
    """(result run label, last event) of a finished simulation orchestration."""
    from autopot.store.database import open_store

    for attempt in range(attempts):
        try:
            with open_store(workflow_dir, read_only=True) as db:
                record = db.root.workflow_runs.get(run_name)
                label = record.summary.get("result_run") if record is not None else None
                last = record.events[-1][1] if record is not None and record.events else "no record"
                return label, last
        except Exception as exc:
            if not _disconnected(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.1)
    raise AssertionError("unreachable")


def _wait_for_other_simulations(workflow_dir: Path, poll_s: float = 0.2) -> None:
    """One orchestrator per workflow directory: wait while another *simulation* holds it
    (parallel calls queue up), refuse at once if it is an AutoPot run (hours, not seconds)."""
    from autopot.engine.runner import is_running
    from autopot.store.database import open_store

    waited = False
    while (pid := is_running(workflow_dir)) is not None:
        try:
            with open_store(workflow_dir, read_only=True) as db:
                live = [r for r in db.root.workflow_runs.values() if r.state == "RUNNING"]
                simulations = [r for r in live if r.params.get("simulation")]
        except Exception as exc:  # the owner is starting or stopping its server
            if not (isinstance(exc, AutopotError) or _disconnected(exc)):
                raise
            live = simulations = []
        if live and not simulations:
            raise SimulationError(
                f"the AutoPot orchestrator (pid {pid}) is running on this workflow "
                "directory; record the simulation elsewhere or after it",
                file=workflow_dir,
                field="workflow",
            )
        if not waited:
            log.info("waiting for the simulation orchestrator (pid %s) on %s", pid, workflow_dir)
            waited = True
        time.sleep(poll_s)


def _orchestrate_in_subprocess(
    workflow_dir: Path,
    task: str,
    job: dict[str, Any],
    refresh: bool,
    executor: dict[str, Any],
    run_params: dict[str, Any],
) -> str:
    import json
    import subprocess
    import sys

    request = json.dumps(
        {
            "workflow_dir": str(workflow_dir),
            "task": task,
            "job": job,
            "refresh": refresh,
            "executor": executor,
            "run_params": run_params,
        }
    )
    proc = subprocess.run(
        [sys.executable, "-m", "autopot.simulate.api"],
        input=request,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
        raise SimulationError(lines[-1], file=workflow_dir, field=task)
    return proc.stdout.strip().splitlines()[-1]


def _subprocess_main() -> None:
    """``python -m autopot.simulate.api`` < request.json: orchestrate, print the label."""
    import json
    import sys

    from autopot.errors import AutopotError

    r = json.load(sys.stdin)
    try:
        label = _orchestrate(
            Path(r["workflow_dir"]),
            r["task"],
            r["job"],
            r["refresh"],
            r["executor"],
            r["run_params"],
        )
    except AutopotError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    print(label)


# ---------------------------------------------------------------------------- the API
def OPT(atoms: Any = None, calculator: Any = "emt", **kwargs: Any) -> SimulationResult:  # noqa: N802
    """Relax ``atoms`` (Atoms or any file ASE reads); see :mod:`autopot.simulate.opt`."""
    return simulate("opt", {"structure": atoms}, calculator, **kwargs)


def EOS(atoms: Any = None, calculator: Any = "emt", **kwargs: Any) -> SimulationResult:  # noqa: N802
    """Equation of state; its relaxations run as OPT tasks. See :mod:`autopot.simulate.eos`."""
    return simulate("eos", {"structure": atoms}, calculator, **kwargs)


def MD(atoms: Any = None, calculator: Any = "emt", **kwargs: Any) -> SimulationResult:  # noqa: N802
    """Molecular dynamics; see :mod:`autopot.simulate.md`."""
    return simulate("md", {"structure": atoms}, calculator, **kwargs)


def PHONON(atoms: Any = None, calculator: Any = "emt", **kwargs: Any) -> SimulationResult:  # noqa: N802
    """Phonons with phonopy; see :mod:`autopot.simulate.phonon`."""
    return simulate("phonon", {"structure": atoms}, calculator, **kwargs)


def NEB(images: Any = None, calculator: Any = "emt", **kwargs: Any) -> SimulationResult:  # noqa: N802
    """NEB over a given path; see :func:`autopot.simulate.neb.run`."""
    return simulate("neb", {"images": images}, calculator, **kwargs)


def NEB_FROM_ENDPOINTS(
    initial: Any = None,
    final: Any = None,
    calculator: Any = "emt",  # noqa: N802
    **kwargs: Any,
) -> SimulationResult:
    """Relaxed endpoints, IDPP path, CI-NEB; see :func:`autopot.simulate.neb.from_endpoints`."""
    return simulate(
        "neb_from_endpoints", {"structure": initial, "final": final}, calculator, **kwargs
    )


def ELASTICITY(atoms: Any = None, calculator: Any = "emt", **kwargs: Any) -> SimulationResult:  # noqa: N802
    """Elastic tensor and moduli; see :mod:`autopot.simulate.elasticity`."""
    return simulate("elasticity", {"structure": atoms}, calculator, **kwargs)


def SFE(atoms: Any = None, calculator: Any = "emt", **kwargs: Any) -> SimulationResult:  # noqa: N802
    """Stacking-fault energy; see :mod:`autopot.simulate.sfe`."""
    return simulate("sfe", {"structure": atoms}, calculator, **kwargs)


def VACANCY(atoms: Any = None, calculator: Any = "emt", **kwargs: Any) -> SimulationResult:  # noqa: N802
    """Vacancy formation and migration; see :mod:`autopot.simulate.vacancy`."""
    return simulate("vacancy", {"structure": atoms}, calculator, **kwargs)


if __name__ == "__main__":
    _subprocess_main()
