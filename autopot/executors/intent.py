"""The submission-intent journal: a small JSON file per run directory written *before*
sbatch and updated after, so that an orchestrator killed between the two can tell, on
restart, whether the job exists (find it by its token) or never got submitted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from autopot.executors.base import EXIT_FILE
from autopot.executors.slurm_script import INTENT_FILE


def exit_after(run_dir: Path, intent: dict[str, Any]) -> bool:
    """An exit file written after the intent: the job of that intent ran to its end."""
    try:
        return (run_dir / EXIT_FILE).stat().st_mtime >= float(intent.get("time") or 0)
    except OSError:
        return False


def read_intent(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / INTENT_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_intent(run_dir: Path, data: dict[str, Any]) -> None:
    tmp = run_dir / (INTENT_FILE + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, run_dir / INTENT_FILE)


def update_intent(run_dir: Path, **items: Any) -> None:
    data = read_intent(run_dir)
    if data:
        write_intent(run_dir, {**data, **items})


def close_intents(specs: list[Any], *, remove: bool = False) -> None:
    for spec in specs:
        if remove:
            (spec.run_dir / INTENT_FILE).unlink(missing_ok=True)
        else:
            update_intent(spec.run_dir, open=False)
