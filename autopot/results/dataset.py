"""Training data with its provenance: which configurations, where each one came from.

Two sources, both answered from the database plus the run directories:

* the training set of a train run (default: the last one): exactly the configurations of
  its ``ts.cfg`` (what the potential was fitted on), each matched to the sp_calc run that
  computed it by walking the chain of train runs (a train run's ``ts.cfg`` is its
  predecessor's plus the results of its ``sp_calc_ids``, in that order);
* any query of sp_calc runs (``--where``).

Energies, forces and stresses are the database's values (float64, as the reference
calculator returned them), not the rounded ones of a .cfg file; configurations that did
not come from an sp_calc run of this workflow (a user-given training set) keep their file
values. Provenance goes into ``atoms.info`` under ``autopot_*`` keys, plus ``MV_grade``:
the extrapolation grade at which the configuration was selected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from autopot.errors import AutopotError, StoreError
from autopot.results.source import WorkflowRecords, train_context
from autopot.tasklib import RESULT, TRAINING_SET

if TYPE_CHECKING:
    from ase import Atoms

_ORIGIN = re.compile(r"^(select|md_select)\.\d+$")
GRADE = "MV_grade"


@dataclass
class Filters:
    """Which configurations to keep; ``None`` means no constraint."""

    min_grade: float | None = None
    max_grade: float | None = None
    iterations: tuple[int, ...] | None = None
    tasks: tuple[str, ...] | None = None  # select, md_select, calculate_ts, initial (or a label)
    stages: tuple[str, ...] | None = None  # calculate_ts, select, md_select, ...

    def keep(self, atoms: Atoms) -> bool:
        info = atoms.info
        if self.min_grade is not None or self.max_grade is not None:
            grade = info.get(GRADE)
            if grade is None:
                return False
            if self.min_grade is not None and grade < self.min_grade:
                return False
            if self.max_grade is not None and grade > self.max_grade:
                return False
        if self.iterations is not None and info.get("autopot_iteration") not in self.iterations:
            return False
        if self.stages is not None and info.get("autopot_stage") not in self.stages:
            return False
        if self.tasks is not None:
            origin = str(info.get("autopot_origin", ""))
            if origin not in self.tasks and origin.split(".")[0] not in self.tasks:
                return False
        return True


def training_set(
    records: WorkflowRecords, train: Any | None = None, *, atom_types: str | None = None
) -> list[Atoms]:
    """The configurations a train run was fitted on (default: the last finished one)."""
    from autopot.mtp.cfg import read_cfg

    train = train if train is not None else records.last_train()
    if train.task != "train":
        raise AutopotError(f"{train.label} is not a train run", field="train")
    if train.state != "FINISHED":
        raise AutopotError(f"{train.label} is {train.state}: it has no training set", field="train")
    types = atom_types or records.atom_types(train)
    path = records.run_dir(train) / TRAINING_SET
    images = read_cfg(path, types)
    origins = _chain_provenance(records, train)
    if len(origins) != len(images):  # an unexpected history: keep what the file says
        origins = (
            [{}] * (len(images) - len(origins)) + origins[-len(images) :]
            if origins
            else [{}] * len(images)
        )
    run_by_id = _sp_calc_runs(records)
    for atoms, origin in zip(images, origins, strict=True):
        sp = run_by_id.get(origin.get("sp_calc_id", -1))
        if sp is not None:
            _apply_reference(atoms, sp)
        _set_info(atoms, origin, sp, records.run_name)
    return images


def sp_calc_results(
    records: WorkflowRecords, where: Iterable[str] = (), *, atom_types: str | None = None
) -> list[Atoms]:
    """Result configurations of the FINISHED sp_calc runs matching ``where``."""
    from autopot.mtp.cfg import read_cfg

    if "sp_calc" not in records.task_names():
        return []
    constraints = [*where, "state = FINISHED"]
    if not any("run_name" in w for w in where):
        constraints.append(f"run_name = {records.run_name!r}")
    origins = _consumers(records)
    out = []
    for run in records.select("sp_calc", constraints):
        types = atom_types or records.atom_types(run)
        (atoms, *_) = read_cfg(records.run_dir(run) / RESULT, types)
        _apply_reference(atoms, run)
        _set_info(atoms, origins.get(run.id, {"sp_calc_id": run.id}), run, run.run_name)
        out.append(atoms)
    return out


# ---------------------------------------------------------------------- provenance
def _previous_train(records: WorkflowRecords, train: Any) -> Any | None:
    """The train run whose ``ts.cfg`` this one started from, by the path's run-directory part
    (``.../runs/train/<id>/ts.cfg``): the recorded path is absolute and may be elsewhere now."""
    from autopot.store.database import WorkflowPaths

    where = WorkflowPaths.parse_run_path(str(train.job.params.get("ts_fname", "")))
    if where is None or where[0] != "train" or where[2] != TRAINING_SET or where[1] >= train.id:
        return None
    try:
        (prev,) = records.runs_by_id("train", [where[1]], field="ts_fname")
    except StoreError:  # a training set from elsewhere, not a run of this database
        return None
    return prev


def _chain_provenance(records: WorkflowRecords, train: Any) -> list[dict[str, Any]]:
    """One provenance dict per configuration of ``train``'s training set, in file order."""
    chain = [train]
    while (prev := _previous_train(records, chain[-1])) is not None:
        chain.append(prev)
    chain.reverse()
    first = chain[0]
    q = first.quantities
    n_initial = int(q.get("ts_size", 0)) - int(q.get("ts_added", 0))
    initial_file = Path(str(first.job.params.get("ts_fname", ""))).name
    out: list[dict[str, Any]] = [{"origin": "initial", "source_file": initial_file}] * max(
        n_initial, 0
    )
    for run in chain:
        context = train_context(run)
        for sp_id in run.job.params.get("sp_calc_ids") or []:
            out.append({"sp_calc_id": int(sp_id), "train": run.label, **context})
    return out


def _consumers(records: WorkflowRecords) -> dict[int, dict[str, Any]]:
    """sp_calc id -> provenance of the first train run that added it."""
    out: dict[int, dict[str, Any]] = {}
    for run in records.runs("train"):
        context = train_context(run)
        for sp_id in run.job.params.get("sp_calc_ids") or []:
            out.setdefault(int(sp_id), {"sp_calc_id": int(sp_id), "train": run.label, **context})
    return out


def _sp_calc_runs(records: WorkflowRecords) -> dict[int, Any]:
    return {run.id: run for run in records.runs("sp_calc", all_workflow_runs=True)}


def _apply_reference(atoms: Atoms, run: Any) -> None:
    """The database's energy/forces/stress of an sp_calc run, as a SinglePointCalculator."""
    from ase.calculators.singlepoint import SinglePointCalculator

    q = run.quantities
    if "energy" not in q:
        return
    forces = np.asarray(q["forces"], dtype=float) if "forces" in q else None
    if forces is not None and forces.shape != (len(atoms), 3):
        raise AutopotError(
            f"{run.label}: recorded forces have shape {forces.shape}, "
            f"but its configuration has {len(atoms)} atoms",
            field="forces",
        )
    results: dict[str, Any] = {"energy": float(q["energy"]), "free_energy": float(q["energy"])}
    if forces is not None:
        results["forces"] = forces
    if "stress" in q and atoms.cell.rank == 3:
        results["stress"] = np.asarray(q["stress"], dtype=float)
    atoms.calc = SinglePointCalculator(atoms, **results)


def _set_info(atoms: Atoms, origin: dict[str, Any], sp: Any | None, run_name: str) -> None:
    info: dict[str, Any] = {"autopot_workflow_run": run_name}
    if sp is not None:
        info["autopot_sp_calc"] = sp.label
        info["autopot_calculator"] = describe_calculator(sp)["name"]
        source = PurePath(str(sp.job.params.get("cfg_fname", ""))).parent.name
        info["autopot_origin"] = (
            source
            if (_ORIGIN.match(source) or source == "calculate_ts")
            else origin.get("stage", "unknown")
        )
    else:
        info["autopot_origin"] = origin.get("origin", "unknown")
        if origin.get("source_file"):
            info["autopot_source_file"] = origin["source_file"]
    for key in ("train", "stage", "iteration", "threshold"):
        if origin.get(key) is not None:
            info[f"autopot_{'added_by' if key == 'train' else key}"] = origin[key]
    for key in ("candidate_index", "md_step"):  # selection features: keep, prefixed
        if key in atoms.info:
            info[f"autopot_{key}"] = atoms.info.pop(key)
    if GRADE in atoms.info:
        info[GRADE] = float(atoms.info[GRADE])
    atoms.info.update(info)


def describe_calculator(sp: Any, run_dir: Path | None = None) -> dict[str, Any]:
    """Name, software, method and settings of an sp_calc run's reference calculator.

    For VASP the INCAR (the sp_calc ``pot_fname``, copied into ``run_dir``) gives the
    exchange-correlation functional and is kept as a setting.
    """
    spec = dict(sp.params.get("calculator") or {})
    name = str(spec.get("calculator", "unknown"))
    low = name.lower()
    settings = {k: v for k, v in spec.items() if k != "calculator"}
    if low == "emt":
        return {"name": "emt", "software": "ASE EMT", "method": "EMT", "settings": settings}
    if low == "eam":
        return {"name": "eam", "software": "ASE EAM", "method": "EAM", "settings": settings}
    if low == "vasp":
        method = "DFT"
        incar_name = sp.job.params.get("pot_fname") or spec.get("incar") or spec.get("pot_fname")
        incar = (
            run_dir / Path(str(incar_name)).name if (run_dir is not None and incar_name) else None
        )
        if incar is not None and incar.is_file():
            text = incar.read_text(errors="replace")
            settings["INCAR"] = text
            method = f"DFT-{_functional(text)}"
        return {"name": "vasp", "software": "VASP", "method": method, "settings": settings}
    return {
        "name": name,
        "software": name.partition(":")[0],
        "method": name.rpartition(":")[2],
        "settings": settings,
    }


_GGA = {
    "PE": "PBE",
    "PS": "PBEsol",
    "91": "PW91",
    "RP": "RPBE",
    "AM": "AM05",
    "CA": "LDA",
    "--": "LDA",
}


def _functional(incar: str) -> str:
    """The functional an INCAR asks for (VASP's default, with POTCARs of PBE: PBE)."""
    tags = {}
    for line in incar.splitlines():
        line = line.split("#")[0].split("!")[0]
        for part in line.split(";"):
            key, sep, value = part.partition("=")
            if sep:
                tags[key.strip().upper()] = value.strip().split()[0] if value.strip() else ""
    if tags.get("METAGGA"):
        return tags["METAGGA"].upper()
    if tags.get("LHFCALC", "").upper().strip(".") in ("TRUE", "T"):
        return "hybrid"
    return _GGA.get(tags.get("GGA", "PE").upper(), tags.get("GGA", "PBE"))
