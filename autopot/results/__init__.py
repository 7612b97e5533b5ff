"""What users take away from a workflow: archive, export, report, and the final potential.

    from autopot.results import final_potential
    pot, ts = final_potential("motoko.yaml")          # the paper's snippet, one call

Every module here reads the database read-only (live through its ZEO server, or the
file) and the run directories; none of them writes to the workflow directory except
``report``, into its own ``report/`` folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple


class FinalPotential(NamedTuple):
    """The current potential of a workflow run and what it was fitted on."""

    potential: Path
    training_set: Path
    train: str  # label of the train run, e.g. "train.12"
    errors: dict[str, float]  # its training errors (energy per atom eV, forces eV/A, stress GPa)


def final_potential(
    workflow: str | Path = "motoko.yaml", run_name: str | None = None
) -> FinalPotential:
    """The last finished train run's ``pot.mtp`` and ``ts.cfg`` (a motoko.yaml or a workflow
    directory, also an extracted archive); raises a one-line error when there is none."""
    from autopot.results.source import open_records
    from autopot.tasklib import POTENTIAL, TRAINING_SET

    with open_records(workflow, run_name) as records:
        run = records.last_train()
        run_dir = records.run_dir(run)
        q: Any = run.quantities
        errors = {
            k: float(v) for k, v in q.items() if any(w in k for w in ("_rmse", "_mae", "_max"))
        }
        return FinalPotential(run_dir / POTENTIAL, run_dir / TRAINING_SET, run.label, errors)


__all__ = ["FinalPotential", "final_potential"]
