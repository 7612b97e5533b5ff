"""``autopot validate`` and ``autopot benchmark``: a potential's verdict, a leaderboard.

autopot validate [-W DIR] [--potential train.N | --calculator SPEC] [--suite FILE]
autopot benchmark --models a,b,c [--reference emt] [--suite FILE] [-o DIR] [-W STORE]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from autopot.commands.options import WORKFLOW_DIR

_SUITE = click.option(
    "--suite",
    type=click.Path(path_type=Path),
    default=None,
    help="validation suite YAML, merged over the shipped default of its family",
)
_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)


@click.command()
@WORKFLOW_DIR
@click.option("--run-name", default=None, help="workflow run (default: the latest)")
@click.option("--potential", default=None, help="a train run, e.g. train.6 (default: the last)")
@click.option(
    "--calculator", default=None, help="any calculator spec or model name instead of a potential"
)
@click.option(
    "--reference", default=None, help="reference calculator (default: the workflow's own)"
)
@_SUITE
@_FORMAT
def validate(
    workflow_dir: str | None,
    run_name: str | None,
    potential: str | None,
    calculator: str | None,
    reference: str | None,
    suite: Path | None,
    fmt: str,
) -> None:
    """Validate a potential against the workflow's reference (recorded simulations; the
    reference side is recalled from the store when already computed)."""
    from autopot.validation.api import validate as run
    from autopot.validation.table import text_lines

    result = run(
        workflow_dir,
        potential=potential,
        calculator=calculator,
        reference=reference,
        suite=suite,
        run_name=run_name,
    )
    if fmt == "json":
        click.echo(json.dumps({k: v for k, v in result.items() if k != "heldout"}, default=str))
        return
    click.echo(f"Validation of {result['potential']} ({result['workflow_run']})")
    for line in text_lines(result["rows"]):
        click.echo(f"  {line}")
    click.echo(
        f"{result['text']}; reference runs recalled: {result['reference_cached']} of "
        f"{result['reference_total']}; {result['wall_s']} s"
    )


@click.command()
@click.option(
    "--models",
    required=True,
    help="comma-separated models: registry names, train.N (of -W), .mtp files, module:Class",
)
@click.option("--reference", default="emt", show_default=True, help="the reference calculator")
@click.option(
    "--atom-types", default=None, help="species to MTP types (default: from the models' specs)"
)
@click.option(
    "--temperature",
    type=float,
    default=300.0,
    show_default=True,
    help="K; held-out MD at the suite's multiples of it",
)
@_SUITE
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("."),
    help="directory for leaderboard.html and leaderboard.json (default: .)",
)
@click.option(
    "--store",
    type=click.Path(path_type=Path),
    default=None,
    help="workflow directory recording the simulations (default: ./autopot-simulate)",
)
@WORKFLOW_DIR
def benchmark(
    models: str,
    reference: str,
    atom_types: str | None,
    temperature: float,
    suite: Path | None,
    output: Path,
    store: Path | None,
    workflow_dir: str | None,
) -> None:
    """Run one suite over several models against one reference; write a leaderboard."""
    from autopot.validation.leaderboard import benchmark as run

    names = [m.strip() for m in models.split(",") if m.strip()]
    board = run(
        names,
        reference=reference,
        suite=suite,
        atom_types=atom_types,
        temperature_K=temperature,
        store=store,
        workflow_dir=workflow_dir,
        out_dir=output,
    )
    for entry in board["models"]:
        click.echo(
            f"{entry['rank']:>3}. {entry['name']:<24} {entry['within_tolerance']:>3} of "
            f"{entry['properties']} within tolerance"
            + (
                f", mean rel. error {entry['mean_rel_err'] * 100:.2f} %"
                if entry["mean_rel_err"] is not None
                else ""
            )
        )
    click.echo(f"wrote {board['files']['html']} and {board['files']['json']}", err=True)
    sys.stdout.flush()
