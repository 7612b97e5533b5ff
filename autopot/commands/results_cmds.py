"""``autopot archive``, ``autopot export`` and ``autopot report``: what users take away."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from autopot.commands.options import WORKFLOW_DIR
from autopot.errors import AutopotError

_RUN_NAME = click.option("--run-name", default=None, help="workflow run (default: the latest)")


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@click.command()
@click.argument("archive", type=click.Path(path_type=Path))
@click.option(
    "--verify",
    "mode",
    flag_value="verify",
    help="check an archive: every sha256, the database records",
)
@click.option(
    "--extract",
    "extract_to",
    type=click.Path(path_type=Path),
    default=None,
    metavar="DEST",
    help="verify, then restore the workflow directory under DEST",
)
@click.option("--force", is_flag=True, help="replace an existing archive")
@click.option(
    "--full-history",
    is_flag=True,
    help="keep every database revision (default: packed to the current state)",
)
@WORKFLOW_DIR
def archive(
    archive: Path,
    mode: str | None,
    extract_to: Path | None,
    force: bool,
    full_history: bool,
    workflow_dir: str | None,
) -> None:
    """Write ARCHIVE (.tar.gz): database snapshot + every run directory + manifest.

    Safe while the orchestrator runs: the database is copied transaction by transaction.
    """
    from autopot.results.archive import create_archive, extract_archive, verify_archive

    if mode == "verify" and extract_to is not None:
        raise click.UsageError("--verify and --extract are exclusive (--extract verifies first)")
    if mode == "verify":
        result = verify_archive(archive)
        click.echo(
            f"{archive}: OK: {result.files} files match their sha256; database opens; "
            f"{result.outputs_checked} recorded outputs of {result.runs_checked} runs match"
        )
        return
    if extract_to is not None:
        target = extract_archive(archive, extract_to)
        click.echo(f"restored {target}  (query it: autopot runs TASK -W {target})")
        return
    from autopot.locate import resolve_workflow_dir

    directory = resolve_workflow_dir(workflow_dir)
    motoko = _motoko_of(workflow_dir)
    made = create_archive(directory, archive, motoko=motoko, pack=not full_history, overwrite=force)
    runs = sum(sum(states.values()) for states in made.database["runs"].values())
    click.echo(
        f"{made.path}: {made.files} files ({_human(made.bytes_in)} -> {_human(made.bytes_out)}), "
        f"database as of {_when(made.database.get('last_commit'))} with {runs} runs; {made.seconds:.1f} s"
    )


def _motoko_of(given: str | None) -> Path | None:
    """The motoko.yaml whose sources go into the archive, when it is known."""
    if given is not None:
        path = Path(given)
        if path.is_file():
            return path
        return (
            path / "motoko.yaml"
            if (path / "motoko.yaml").is_file() and not (path / "db").is_dir()
            else None
        )
    return Path("motoko.yaml") if Path("motoko.yaml").is_file() else None


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["extxyz", "cfg", "colabfit"]),
    default="extxyz",
    show_default=True,
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="file (extxyz, cfg; default: standard output) or directory (colabfit, required)",
)
@click.option(
    "--train",
    "train_label",
    default=None,
    metavar="train.N",
    help="training set of this train run (default: the last finished one)",
)
@click.option(
    "--sp-calc", "from_sp_calc", is_flag=True, help="export sp_calc results instead (see --where)"
)
@click.option(
    "--where",
    "-w",
    multiple=True,
    help='sp_calc constraints, e.g. "energy < -3" (implies --sp-calc)',
)
@click.option(
    "--min-grade",
    type=float,
    default=None,
    help="only configurations selected at this grade or above",
)
@click.option(
    "--max-grade",
    type=float,
    default=None,
    help="only configurations selected at this grade or below",
)
@click.option(
    "--iteration",
    type=int,
    multiple=True,
    help="only those added in this stage iteration (repeatable)",
)
@click.option(
    "--task",
    "tasks",
    multiple=True,
    help="only those proposed by this task: select, md_select, calculate_ts, initial, or a run label",
)
@click.option(
    "--stage",
    "stages",
    multiple=True,
    help="only those added in this stage (calculate_ts, select, md_select)",
)
@click.option(
    "--atom-types", default=None, help="species to MTP types for .cfg (default: the workflow's)"
)
@click.option("--name", default="", help="dataset name (colabfit)")
@click.option("--description", default="", help="dataset description (colabfit)")
@click.option("--author", "authors", multiple=True, help="dataset author (colabfit; repeatable)")
@click.option(
    "--link", "links", multiple=True, help="related link, e.g. the paper (colabfit; repeatable)"
)
@WORKFLOW_DIR
@_RUN_NAME
def export(
    fmt: str,
    output: Path | None,
    train_label: str | None,
    from_sp_calc: bool,
    where: tuple[str, ...],
    min_grade: float | None,
    max_grade: float | None,
    iteration: tuple[int, ...],
    tasks: tuple[str, ...],
    stages: tuple[str, ...],
    atom_types: str | None,
    name: str,
    description: str,
    authors: tuple[str, ...],
    links: tuple[str, ...],
    workflow_dir: str | None,
    run_name: str | None,
) -> None:
    """Export a training set (or sp_calc results) with energies, forces, stresses and provenance."""
    from autopot.results import dataset as ds
    from autopot.results import export as ex
    from autopot.results.source import open_records

    if train_label and (from_sp_calc or where):
        raise click.UsageError("--train and --sp-calc/--where are exclusive")
    if fmt == "colabfit" and output is None:
        raise click.UsageError("--format colabfit writes a directory: give it with -o DIR")
    if min_grade is not None and max_grade is not None and min_grade > max_grade:
        raise click.UsageError("--min-grade is above --max-grade")
    filters = ds.Filters(
        min_grade=min_grade,
        max_grade=max_grade,
        iterations=iteration or None,
        tasks=tasks or None,
        stages=stages or None,
    )
    with open_records(workflow_dir, run_name) as records:
        if from_sp_calc or where:
            images = ds.sp_calc_results(records, where, atom_types=atom_types)
            source = "sp_calc results" + (f" where {'; '.join(where)}" if where else "")
        else:
            train = records.run(train_label) if train_label else records.last_train()
            images = ds.training_set(records, train, atom_types=atom_types)
            source = f"training set of {train.label}"
        kept = [a for a in images if filters.keep(a)]
        if not kept:  # before writing: an empty file would pass for an empty training set
            raise AutopotError(
                f"no configuration matched the filters (of {len(images)}: {source})",
                field="filters",
            )
        if fmt == "colabfit":
            assert output is not None
            ex.write_colabfit(
                output,
                kept,
                records,
                source=source,
                dataset=ex.DatasetInfo(name, description, list(authors), list(links)),
            )
        else:
            if fmt == "extxyz":
                text = ex.extxyz_text(kept)
            else:
                text = ex.cfg_text(kept, atom_types or records.atom_types())
            if output is None:
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                ex.write_text(output, text)
    where_to = f" to {output}" if output is not None else ""
    click.echo(
        f"exported {len(kept)} of {len(images)} configurations ({source}){where_to}", err=True
    )


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="directory for the plots and tables (default: <workflow dir>/report/<run name>)",
)
@click.option("--html", is_flag=True, help="also write one self-contained report.html")
@click.option(
    "--no-parity", is_flag=True, help="skip the parity plots (they evaluate the last potential)"
)
@WORKFLOW_DIR
@_RUN_NAME
def report(
    output: Path | None, html: bool, no_parity: bool, workflow_dir: str | None, run_name: str | None
) -> None:
    """Plots and tables of how the training went: sizes, errors, parity, grades, wall time."""
    from autopot.results.report import build_report
    from autopot.results.source import open_records

    with open_records(workflow_dir, run_name) as records:
        out_dir = output or records.directory / "report" / records.run_name
        result = build_report(records, out_dir, html=html, parity=not no_parity)
    click.echo(result.text(), nl=False)  # tables, then every figure (or why it was skipped)


def _when(timestamp: float | None) -> str:
    """A commit time as a person reads it (the transaction id stays in the manifest)."""
    import time

    return (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))
        if timestamp
        else "its last commit"
    )
