"""Options shared by several commands, declared once so that every command spells them
the same way (``-W/--workflow-dir`` everywhere; ``-c`` only where a motoko.yaml is meant)."""

from __future__ import annotations

import click

#: the workflow to read: its directory or its motoko.yaml
WORKFLOW_DIR = click.option(
    "-W",
    "--workflow-dir",
    "workflow_dir",
    default=None,
    help="workflow directory or its motoko.yaml (default: ./motoko.yaml's, $AUTOPOT_WORKFLOW_DIR)",
)
