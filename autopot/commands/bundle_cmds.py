"""``autopot export`` with ``--bundle DIR``: the publish bundle (autopot.validation.bundle).

The export command itself lives in :mod:`autopot.commands.results_cmds`; this wraps it
with one more option, so that without ``--bundle`` it behaves exactly as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from autopot.commands.results_cmds import export as _export


def _run(bundle: Path | None, license_: str, **kwargs: Any) -> None:
    if bundle is None:
        _export.callback(**kwargs)  # type: ignore[misc]
        return
    from autopot.validation.bundle import write_bundle

    out = write_bundle(
        bundle,
        kwargs["workflow_dir"],
        run_name=kwargs["run_name"],
        name=kwargs["name"],
        license=license_,
        authors=kwargs["authors"],
    )
    click.echo(f"wrote the publish bundle to {out}", err=True)


export = click.Command(
    name="export",
    callback=_run,
    params=[
        *_export.params,
        click.Option(
            ["--bundle"],
            type=click.Path(path_type=Path),
            default=None,
            help="write a publish bundle into this (new or empty) directory instead: final "
            "potential, training set (extxyz + ColabFit), validation, report, model card",
        ),
        click.Option(
            ["--license", "license_"],
            default="CC-BY-4.0",
            show_default=True,
            help="license named in the bundle's model card",
        ),
    ],
    help=_export.help,
    short_help=_export.short_help,
)
