"""Finding the workflow directory (runtime state) from what the user gave.

Runtime state never goes into the source checkout's tracked files: by default it lives
in ``autopot-workflow/`` next to ``motoko.yaml`` (git-ignored), or where motoko.yaml's
``directory:`` key, ``--workflow-dir`` or ``$AUTOPOT_WORKFLOW_DIR`` says.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DIRNAME = "autopot-workflow"
MOTOKO = "motoko.yaml"


def workflow_dir_from_motoko(motoko: Path) -> Path:
    """``directory:`` of a motoko.yaml (relative to it), default ``autopot-workflow``."""
    from autopot.errors import WorkflowError
    from autopot.yamlfile import read_yaml_mapping

    data = read_yaml_mapping(motoko, WorkflowError)
    directory = data.get("directory", DEFAULT_DIRNAME)
    if not isinstance(directory, str) or not directory:
        raise WorkflowError("expected a directory path", file=motoko, field="directory")
    return (motoko.parent / directory).resolve()


def resolve_workflow_dir(given: str | Path | None = None) -> Path:
    """A workflow directory from ``given`` (a directory or a motoko.yaml), the
    environment, or the current directory's motoko.yaml."""
    if given is None:
        env = os.environ.get("AUTOPOT_WORKFLOW_DIR")
        if env:
            return Path(env).resolve()
        given = Path(MOTOKO) if Path(MOTOKO).is_file() else Path(DEFAULT_DIRNAME)
    path = Path(given)
    if path.is_file():
        return workflow_dir_from_motoko(path)
    if path.is_dir() and (path / MOTOKO).is_file() and not (path / "db").is_dir():
        return workflow_dir_from_motoko(path / MOTOKO)
    return path.resolve()
