"""Selection across the concurrent MDs of one md_select iteration (Algorithm 2.1, online).

Why: every md_select run chooses its configurations against the potential's active set
alone, so hundreds of MDs that wander into the same region would each send a copy of
the same configuration to the reference (DFT) calculation. Here one active set per
iteration, built from the same potential and training set the MDs used, is kept in
memory; as each MD ends its picks are graded against it, those still above
``gamma_min`` are dispatched and their rows swapped into it with MLIP-2's maxvol (as
``select_add`` swaps them), and the others are dropped. After that update every swapped
pool row has |c| <= 1.0000001, so a near-identical pick of a later MD grades ~1 and is
dropped, while a pick from a region nobody covered keeps its grade and goes out. The
first MD's picks are all dispatched (md_select collected them above ``gamma_min``
against the same active set; only the .cfg round trip's rounding could move one to
it), so a single MD behaves as without the filter.

Restart safety. The decision depends on the order in which MDs end, which a restart does
not reproduce. Rules that keep a restart from throwing away (or repeating) reference work:

* The pick files are the journal. A dispatched pick is written, atomically, as
  ``<inputs>/<md label>/<index in its selected.cfg>.cfg`` *before* its sp_calc is
  created; a dropped pick gets no file. sp_calc's job identity is that path and its
  content, so the same pick always maps to the same job.
* On restart, every pick that already has a file is dispatched again whatever its grade
  now (``forced``): the engine hands back its finished (or still running) sp_calc
  instead of computing it anew, and it enters the active set before anything new is
  decided. A finished reference calculation is never thrown away. Files written by an
  earlier version, or with ``--no-cross-md-selection``, count the same way.
* MDs already finished at restart are processed first, those with pick files before the
  others, each group in label order (:func:`restart_order`); only MDs still running are
  taken in completion order. A crash between a file and its sp_calc is harmless: the
  file is rewritten with the same bytes and the sp_calc created then.

So a restart recreates every job dispatched before the crash; only MDs that had not been
processed may be decided differently from an uninterrupted run, as their completion
order would have differed anyway.

Backends: motep (the default) updates the in-memory :class:`autopot.mtp.activeset.MaxVol`
incrementally. Any other backend (``mlp``) grades with its own ``calc_grade`` against the
training set plus the picks dispatched so far: correct, and slower (the active set is
rebuilt for every MD).

The methods here block (jacobians, matrix products): call them with
``asyncio.to_thread``; numpy releases the GIL, so the event loop stays responsive.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms

    from autopot.engine.runs import RunList, RunView

log = logging.getLogger(__name__)

#: a dispatched pick's file: its index in the MD's selected.cfg (as ``split_cfg`` names them)
PICK_FILE = re.compile(r"^(\d{4,})\.cfg$")


@dataclass
class Decision:
    """What the filter did with one MD's picks."""

    dispatched: list[int]  # indices into the picks, sorted
    grades: np.ndarray  # grade of every pick when it was graded (forced ones: after nothing)
    forced: list[int] = field(default_factory=list)  # dispatched because a file existed
    seconds: float = 0.0

    @property
    def dropped(self) -> int:
        return len(self.grades) - len(self.dispatched)


@dataclass
class CrossMDStats:
    """Per-iteration counts for the workflow summary (``cross_md``)."""

    picked: int = 0
    dispatched: int = 0
    dropped: int = 0
    grade_s: float = 0.0  # grading and active-set updates, summed over MDs
    build_s: float = 0.0  # building (or loading) the iteration's active set

    def add(self, decision: Decision) -> None:
        self.picked += len(decision.grades)
        self.dispatched += len(decision.dispatched)
        self.dropped += decision.dropped
        self.grade_s += decision.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "picked": self.picked,
            "dispatched": self.dispatched,
            "dropped": self.dropped,
            "grade_s": round(self.grade_s, 3),
            "build_s": round(self.build_s, 3),
        }


class CrossMDSelection:
    """One iteration's online filter: :meth:`prepare` once, then :meth:`offer` per MD.

    ``pot``/``training_set`` are the files the iteration's md_select runs got;
    ``mtp_backend`` is the run-space spec they ran with (its ``mode`` matters).
    """

    def __init__(
        self,
        pot: Path,
        training_set: Path,
        atom_types: str,
        mtp_backend: Mapping[str, Any] | None,
        gamma_min: float,
    ) -> None:
        from autopot.mtp.atom_types import parse_atom_types
        from autopot.mtp.backend import MotepBackend, backend_from_spec

        self.pot = Path(pot)
        self.training_set = Path(training_set)
        self.types = parse_atom_types(atom_types)
        self.backend = backend_from_spec(mtp_backend)
        self.gamma_min = float(gamma_min)
        self.incremental = isinstance(self.backend, MotepBackend)
        self.mode: str = self.backend.mode if isinstance(self.backend, MotepBackend) else ""
        self.accepted: list[Atoms] = []  # every pick dispatched this iteration
        self._training: list[Atoms] | None = None
        self._arr: Any = None
        self._maxvol: Any = None
        self._next_owner = 1 << 40  # owners of pick rows, above any training index

    def prepare(self) -> float:
        """Read the training set and build (or load) its active set; returns seconds."""
        t0 = time.perf_counter()
        if self._training is not None:
            return 0.0
        from autopot.mtp.cfg import read_cfg

        size = self.training_set.stat().st_size if self.training_set.is_file() else 0
        self._training = read_cfg(self.training_set, self.types) if size else []
        if self.incremental:
            from autopot.mtp.activeset import MaxVol
            from autopot.mtp.backend import get_active_set, load_potential
            from autopot.mtp.jacobian import MTPArrays

            data = load_potential(self.pot, self.types)
            self._arr = MTPArrays.from_mtp(data, data.species)
            # n_jobs=1: no worker processes forked from the orchestrator's threads
            als = get_active_set(self.pot, self._training, self.types, mode=self.mode, n_jobs=1)
            self._maxvol = MaxVol(
                a=als.maxvol.a.copy(), ainv=als.maxvol.ainv.copy(), owner=als.maxvol.owner.copy()
            )
        return time.perf_counter() - t0

    def offer(self, picks: Sequence[Atoms], forced: Collection[int] = ()) -> Decision:
        """Grade one MD's picks against everything dispatched before; those above
        ``gamma_min`` (and every ``forced`` index) are dispatched and join the active set."""
        t0 = time.perf_counter()
        self.prepare()
        forced_idx = sorted({int(i) for i in forced if 0 <= int(i) < len(picks)})
        if not picks:
            return Decision(dispatched=[], grades=np.zeros(0))
        if self.incremental:
            grades, chosen = self._offer_incremental(picks, forced_idx)
        else:
            grades, chosen = self._offer_generic(picks, forced_idx)
        dispatched = sorted({*forced_idx, *chosen})
        self.accepted += [picks[i] for i in dispatched if i not in forced_idx]
        return Decision(
            dispatched=dispatched,
            grades=grades,
            forced=forced_idx,
            seconds=time.perf_counter() - t0,
        )

    # -- motep: the in-memory active set, updated as select_add would -----------------
    def _offer_incremental(
        self, picks: Sequence[Atoms], forced: list[int]
    ) -> tuple[np.ndarray, list[int]]:
        from autopot.mtp.activeset import SWAP_THRESHOLD, jacobian_rows

        rows, owners = jacobian_rows(self._arr, picks, self.mode, n_jobs=1)
        ids = self._next_owner + np.arange(len(picks), dtype=np.int64)
        self._next_owner += len(picks)
        if forced:
            self.accepted += [picks[i] for i in forced]
            self._swap_in(rows, owners, ids, forced, SWAP_THRESHOLD)
        c = np.abs(rows @ self._maxvol.ainv).max(axis=1) if len(rows) else np.zeros(0)
        grades = np.zeros(len(picks))
        np.maximum.at(grades, owners, c)
        chosen = [i for i in range(len(picks)) if i not in forced and grades[i] > self.gamma_min]
        self._swap_in(rows, owners, ids, chosen, SWAP_THRESHOLD)
        return grades, chosen

    def _swap_in(
        self,
        rows: np.ndarray,
        owners: np.ndarray,
        ids: np.ndarray,
        which: Sequence[int],
        threshold: float,
    ) -> None:
        if not len(which):
            return
        mask = np.isin(owners, np.asarray(which, dtype=np.int64))
        self._maxvol.maximize(rows[mask], ids[owners[mask]], threshold=threshold)

    # -- any backend: calc_grade against the training set plus what was dispatched ------
    def _offer_generic(
        self, picks: Sequence[Atoms], forced: list[int]
    ) -> tuple[np.ndarray, list[int]]:
        self.accepted += [picks[i] for i in forced]
        assert self._training is not None
        grades = np.asarray(
            self.backend.calc_grade(
                self.pot, [*self._training, *self.accepted], list(picks), self.types
            ),
            dtype=float,
        )
        chosen = [i for i in range(len(picks)) if i not in forced and grades[i] > self.gamma_min]
        return grades, chosen


def dispatched_before(directory: Path) -> list[int]:
    """Indices of the picks that already have a file in ``directory`` (see module doc)."""
    if not directory.is_dir():
        return []
    out = []
    for path in directory.iterdir():
        m = PICK_FILE.match(path.name)
        if m:
            out.append(int(m.group(1)))
    return sorted(out)


def write_picks(
    picks: Sequence[Atoms], indices: Sequence[int], directory: Path, atom_types: str
) -> list[Path]:
    """One file per dispatched pick, named by its index among the MD's picks (atomic), as
    ``split_cfg`` names them."""
    from autopot.activelearning.stages import write_each

    return write_each(picks, directory, atom_types, indices)


async def restart_order(md_runs: RunList, picks_dir: Path, workflow: Any) -> AsyncIterator[RunView]:
    """The MDs of one iteration in the order the filter sees them: those already ended
    (on a restart) first, the ones with dispatched picks before the others, each group
    by label; then the rest as they end."""
    from autopot.engine.runs import RunList

    ended = [r for r in md_runs if r.done]
    ended.sort(key=lambda r: (not dispatched_before(picks_dir / r.label), r.id))
    for run in ended:
        yield run
    async for run in RunList([r for r in md_runs if r not in ended], workflow).as_completed():
        yield run
