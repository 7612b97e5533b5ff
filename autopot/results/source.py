"""Reading a workflow's records for what users take away (export, report, final potential).

Works on a workflow *directory* (not its motoko.yaml), so it works the same on a live
workflow (through its ZEO server), a finished one (the file, read-only, no lock) and an
archive extracted elsewhere: run directories are stored relative to the workflow
directory, and nothing here follows the absolute input paths recorded in job parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autopot.store.workflow_records import WorkflowRecords

__all__ = ["WorkflowRecords", "open_records", "train_context"]


def train_context(run: Any) -> dict[str, Any]:
    """Stage, iteration and threshold of a train run, as the stages recorded them in its
    job's ``context`` (``train_args["context"]`` in older records; empty for train runs made by hand)."""
    params = run.job.params
    if "context" in params:
        return dict(params["context"] or {})
    return dict((params.get("train_args") or {}).get("context") or {})  # records before 0.2


def open_records(
    workflow_dir: str | Path | None = None, run_name: str | None = None
) -> WorkflowRecords:
    """Open a workflow directory (or its motoko.yaml) read-only; default run: the latest."""
    return WorkflowRecords.open(workflow_dir, run_name)
