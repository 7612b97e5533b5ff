"""``autopot simulate TASK``: one recorded simulation from the shell.

    autopot simulate eos --structure Cu.cif --calculator emt [-p n_points=9] [--refresh]
    autopot simulate neb --images a.xyz --images b.xyz --images c.xyz --calculator emt-cu
    autopot simulate neb_from_endpoints --structure ini.xyz --final fin.xyz -p n_images=7
    autopot simulate models                    # the model registry
    autopot simulate compare -s Cu.cif -c emt -c train.8 [--tasks eos,elasticity,sfe]

Results are recorded in ``./autopot-simulate`` (or ``-W``, any workflow directory) and
printed: scalars by default, everything with ``--format json``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from autopot.errors import AutopotError

_TASKS = ("opt", "eos", "md", "phonon", "neb", "neb_from_endpoints", "elasticity", "sfe", "vacancy")


def _parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """``-p key=value``; values are YAML (``3``, ``0.01``, ``true``, ``[300, 600]``, text)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise AutopotError(f"expected KEY=VALUE, got {item!r}", field="param")
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise AutopotError(
                f"not a value: {raw!r} ({exc.__class__.__name__})", field=key.strip()
            ) from None
    return out


def _summary(result: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in result.items():
        if isinstance(value, (list, dict)):
            size = len(value)
            value = f"<{type(value).__name__} of {size}>"
        lines.append(f"{key}: {value}")
    return lines


_DOCS = {
    "opt": "Relax a structure (ASE optimizer, cell filter, symmetry).",
    "eos": "Equation of state: Birch-Murnaghan over volumes; relaxations as OPT runs.",
    "md": "Molecular dynamics (NVE, Langevin, Nose-Hoover, Berendsen, NPT) with schedules.",
    "phonon": "Phonons (phonopy): force constants, bands, DOS, thermal properties.",
    "neb": "Climbing-image NEB over a given path (--images, in order).",
    "neb_from_endpoints": "Relax endpoints, IDPP path, climbing-image NEB (--structure, --final).",
    "elasticity": "Elastic tensor, C11/C12/C44, Voigt/Reuss/Hill moduli (matscipy).",
    "sfe": "Stacking-fault energy (fcc intrinsic, bcc 1/4[111]) in mJ/m2.",
    "vacancy": "Vacancy formation energy and migration barrier (NEB from endpoints).",
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def simulate() -> None:
    """Simulations on any potential, recorded and cached in a workflow's store.

    Parameters of a task: autopot/simulate/templates/TASK/bd.yaml (or docs/simulate.md).
    """


@simulate.command()
def models() -> None:
    """List the model registry (models.yaml): names usable as --calculator."""
    from autopot.reference.registry import load, registry_files

    for model in load().values():
        meta = ", ".join(f"{k}: {v}" for k, v in model.meta.items() if k != "doc")
        click.echo(f"{model.name}: {json.dumps(model.spec)}" + (f"  ({meta})" if meta else ""))
    click.echo("from: " + ", ".join(str(p) for p in registry_files()), err=True)


@simulate.command()
@click.option("-s", "--structure", required=True, help="structure file (any format ASE reads)")
@click.option(
    "--calculator",
    "calculators",
    multiple=True,
    required=True,
    help="calculator to compare (repeat); the first is the reference",
)
@click.option(
    "--tasks",
    "simulations",
    default="eos,elasticity,sfe",
    show_default=True,
    help="comma-separated: eos, elasticity, sfe, vacancy",
)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="TASK.KEY=VALUE",
    help="parameter of one simulation (repeat), e.g. -p eos.n_points=7",
)
@click.option("--refresh", is_flag=True, help="run again even if recorded")
@click.option("--executor", default="local", show_default=True)
@click.option(
    "-W",
    "--workflow-dir",
    "workflow_dir",
    default=None,
    help="workflow directory to record in (default: ./autopot-simulate)",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def compare(
    structure: str,
    calculators: tuple[str, ...],
    simulations: str,
    params: tuple[str, ...],
    refresh: bool,
    executor: str,
    workflow_dir: str | None,
    fmt: str,
) -> None:
    """Key figures of several calculators side by side (the first is the reference).

    Recorded and cached like every simulation: the reference's runs are recalled, so
    validating a new potential computes only its own side.
    """
    from autopot.simulate.comparison import compare as run

    per_task: dict[str, dict[str, Any]] = {}
    for key, value in _parse_params(params).items():
        task, sep, name = key.partition(".")
        if not sep:
            raise AutopotError("expected TASK.KEY=VALUE, e.g. eos.n_points=7", field=key)
        per_task.setdefault(task, {})[name] = value
    table = run(
        structure,
        list(calculators),
        tuple(t.strip() for t in simulations.split(",") if t.strip()),
        params=per_task,
        workflow=workflow_dir,
        refresh=refresh,
        executor=executor,
    )
    if fmt == "json":
        click.echo(json.dumps(table))
        return
    names = list(table)
    columns = [c for c in next(iter(table.values())) if c != "runs" and not c.endswith("_dev")]
    width = max(20, *(len(n) + 2 for n in names))
    click.echo(f"{'':22}" + "".join(f"{n:>{width}}" for n in names))
    for column in columns:
        cells = []
        for i, n in enumerate(names):
            value, dev = table[n].get(column), table[n].get(f"{column}_dev")
            text = "-" if value is None else f"{value:.4g}"
            if i and dev is not None:
                text += f" ({dev:+.1%})"
            cells.append(f"{text:>{width}}")
        click.echo(f"{column:22}" + "".join(cells))
    click.echo("runs: " + "; ".join(f"{n}: {', '.join(table[n]['runs'])}" for n in names), err=True)


def _task_command(task: str) -> click.Command:
    @simulate.command(
        name=task, help=_DOCS[task], context_settings={"help_option_names": ["-h", "--help"]}
    )
    @click.option(
        "-s",
        "--structure",
        default=None,
        help="structure file (any format ASE reads); NEB: the initial state",
    )
    @click.option("--final", default=None, help="neb_from_endpoints: the final state")
    @click.option("--images", multiple=True, help="neb: the path's images in order (repeat)")
    @click.option(
        "--calculator",
        default="emt",
        show_default=True,
        help="emt, eam, vasp, module:Class, a models.yaml name, TASK.N train run, a .mtp file, or JSON",
    )
    @click.option("--atom-types", default=None, help="atom types of a .mtp calculator, e.g. Cu=0")
    @click.option(
        "-p",
        "--param",
        "params",
        multiple=True,
        metavar="KEY=VALUE",
        help="simulation parameter (repeat), e.g. -p n_points=9 -p temperature_K=[300,600]",
    )
    @click.option("--refresh", is_flag=True, help="run again even if this job is recorded")
    @click.option(
        "--executor", default="local", show_default=True, help="local, slurm or module:Class"
    )
    @click.option(
        "--slurm-option",
        "slurm_opts",
        multiple=True,
        metavar="KEY=VALUE",
        help="SLURM option of the task runs (repeat), e.g. --slurm-option partition=short",
    )
    @click.option(
        "-W",
        "--workflow-dir",
        "workflow_dir",
        default=None,
        help="workflow directory to record in (default: ./autopot-simulate, $AUTOPOT_SIMULATE_DIR)",
    )
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["summary", "json"]),
        default="summary",
        show_default=True,
    )
    @click.option("-v", "--verbose", is_flag=True, help="log the orchestration")
    def command(**kwargs: Any) -> None:
        _run(task, **kwargs)

    return command


def _run(
    task: str,
    structure: str | None,
    final: str | None,
    images: tuple[str, ...],
    calculator: str,
    atom_types: str | None,
    params: tuple[str, ...],
    refresh: bool,
    executor: str,
    slurm_opts: tuple[str, ...],
    workflow_dir: str | None,
    fmt: str,
    verbose: bool,
) -> None:
    """Run (or recall) the simulation TASK on one structure, recorded in a workflow's store."""
    import logging

    from autopot.simulate.api import simulate as run

    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    if task == "neb":
        structures: dict[str, Any] = {"images": list(images)}
    else:
        if structure is None:
            raise AutopotError("a structure file is needed (--structure)", field="structure")
        structures = {"structure": structure}
        if task == "neb_from_endpoints":
            if final is None:
                raise AutopotError("the final state is needed (--final)", field="final")
            structures["final"] = final
    spec: Any = calculator
    if atom_types:
        from autopot.reference.calculators import resolve_spec

        spec = {**resolve_spec(calculator), "atom_types": atom_types}
    slurm = _parse_params(slurm_opts) or None
    result = run(
        task,
        structures,
        spec,
        workflow=workflow_dir,
        refresh=refresh,
        executor=executor,
        slurm_options=slurm,
        **_parse_params(params),
    )
    origin = "recorded" if result.cached else "computed"
    click.echo(f"{result.run} ({origin}) in {result.workflow_dir}", err=True)
    if fmt == "json":
        click.echo(json.dumps(dict(result)))
    else:
        click.echo("\n".join(_summary(result)))


for _name in _TASKS:
    _task_command(_name)
