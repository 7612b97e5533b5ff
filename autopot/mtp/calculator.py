"""ASE calculator that reports the MTP extrapolation grade, and MD with selection.

This is MLIP-2's "learning on the fly" in an ASE loop: the MTP (motep ``cext``) gives
energy/forces/stress, the active set (the same as :meth:`MotepBackend.calc_grade`) gives the
grade every ``grade_every`` MD steps, snapshots above ``gamma_min`` are kept and the run
stops once a grade exceeds ``gamma_max`` (the potential is then unreliable).

The grade (one energy-jacobian row per configuration, several times the cost of the
forces) is counted in MD steps, not in force calls: integrators that evaluate forces more
than once per step (ASE's NPT does twice) used to pay for grades nobody read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from autopot.errors import MTPError

from .activeset import ActiveSet
from .atom_types import parse_atom_types


class GradingMTP(Calculator):
    """MTP calculator with ``results["grade"]`` (and ``"nbh_grades"`` per atom in
    neighbourhood mode) on every ``grade_every``-th calculation (0, k, 2k, ...), or only
    when asked (``grade_every=None``). ``get_property("grade")`` grades the current
    positions, reusing their energy and forces when they are already computed."""

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "grade"]

    def __init__(
        self,
        pot: str | Path,
        training_set: str | Path | Sequence[Atoms],
        atom_types: str | Mapping[str, int],
        *,
        grade_every: int | None = 1,
        mode: str = "configuration",
        active_set: ActiveSet | None = None,
        **kwargs: Any,
    ) -> None:
        from motep.calculator import MTP

        from .backend import check_species, get_active_set, load_configs, load_potential
        from .jacobian import MTPArrays

        super().__init__(**kwargs)
        if grade_every is not None and (not isinstance(grade_every, int) or grade_every < 1):
            raise MTPError(
                f"grade_every must be a positive integer, got {grade_every!r}", field="grade_every"
            )
        self.atom_types = parse_atom_types(atom_types)
        self.data = load_potential(pot, self.atom_types)
        self.arrays = MTPArrays.from_mtp(self.data, self.data.species)
        if active_set is None:
            train = load_configs(training_set, self.atom_types, "training_set")
            check_species(
                train,
                self.atom_types,
                int(self.data.species_count),
                file=str(training_set) if isinstance(training_set, str | Path) else None,
                pot=pot,
            )
            active_set = get_active_set(pot, train, self.atom_types, mode=mode)
        self.active_set = active_set
        self.grade_every = grade_every
        self.ncalc = 0
        self.last_grade: float | None = None
        self._mtp = MTP(self.data, engine="cext", mode="run")

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = all_changes,
    ) -> None:
        known = self.results
        efs = [p for p in properties if p != "grade"]
        super().calculate(atoms, properties, system_changes)
        if system_changes or "energy" not in known or any(p not in known for p in efs):
            self._mtp.calculate(self.atoms, efs or ["energy"], system_changes)
            res = dict(self._mtp.results)
            auto = self.grade_every is not None and self.ncalc % self.grade_every == 0
            self.ncalc += 1
        else:  # only a grade asked of positions whose energy and forces are known
            res, auto = dict(known), False
        if "grade" in properties or auto:
            grade, nbh = self.active_set.grade_atoms(self.arrays, self.atoms)
            res["grade"] = grade
            if nbh is not None:
                res["nbh_grades"] = nbh
            self.last_grade = grade
        self.results = res


@dataclass
class MDResult:
    """Outcome of :func:`run_md_select`."""

    snapshots: list[Atoms] = field(default_factory=list)  # grade > gamma_min, info["MV_grade"]
    aborted: bool = False  # stopped because a grade exceeded gamma_max (or it broke)
    step: int = 0  # last MD step done
    max_grade: float = 0.0
    grades: list[tuple[int, float]] = field(default_factory=list)
    unphysical: str = ""  # why the trajectory was stopped as unphysical ('' if it was not)


def run_md_select(
    atoms: Atoms,
    pot: str | Path,
    training_set: str | Path | Sequence[Atoms],
    atom_types: str | Mapping[str, int],
    *,
    md: Mapping[str, Any],
    select: Mapping[str, Any],
    mode: str = "configuration",
) -> MDResult:
    """MD with the MTP (any ensemble of :mod:`autopot.dynamics`, with temperature and
    pressure ramps); collect snapshots graded above ``gamma_min``, stop at the first grade
    above ``gamma_max``, and stop at the first unphysical snapshot (atoms too close, cell
    sheared) without collecting it: such a configuration must not reach a reference
    calculation. ``md``/``select`` are tasks/md_select/bd.yaml's ``md_args``/``select_args``
    with every key filled (the defaults live there only). The input is not modified."""
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from autopot.dynamics import make_dynamics, ramp, set_targets, unphysical

    gamma_min, gamma_max = float(select["gamma_min"]), float(select["gamma_max"])
    if not 1.0 <= gamma_min < gamma_max:
        raise MTPError(
            f"need 1 <= gamma_min < gamma_max, got {gamma_min} and {gamma_max}", field="gamma_min"
        )
    steps, t_start = int(md["steps"]), float(md["temperature_K"])
    t_end = t_start if md.get("temperature_end_K") is None else float(md["temperature_end_K"])
    p_start = float(md["pressure_GPa"])
    p_end = p_start if md.get("pressure_end_GPa") is None else float(md["pressure_end_GPa"])
    if steps < 0 or float(md["timestep_fs"]) <= 0 or min(t_start, t_end) < 0:
        raise MTPError("steps, timestep_fs and temperature_K must be positive", field="md")
    work = atoms.copy()
    grade_every = int(select["grade_every"])
    if grade_every < 1:
        raise MTPError(
            f"grade_every must be a positive integer, got {grade_every}", field="grade_every"
        )
    # graded on request, at MD steps 0, k, 2k, ...: not per force call (see module docstring)
    calc = GradingMTP(pot, training_set, atom_types, grade_every=None, mode=mode)
    work.calc = calc
    rng = np.random.default_rng(int(md["seed"]))
    MaxwellBoltzmannDistribution(work, temperature_K=t_start, rng=rng)
    ensemble = str(md["ensemble"])
    dyn = make_dynamics(
        work,
        ensemble,
        timestep_fs=float(md["timestep_fs"]),
        temperature_K=t_start,
        pressure_GPa=p_start,
        friction_per_fs=float(md["friction"]),
        tdamp_fs=float(md["tdamp_fs"]),
        pdamp_fs=float(md["pdamp_fs"]),
        compressibility_per_GPa=float(md["compressibility_per_GPa"]),
        rng=rng,
    )
    limits = {
        "min_distance_A": float(select["min_distance_A"]),
        "max_cell_skew": float(select["max_cell_skew"]),
    }
    result = MDResult()

    def check(step: int) -> bool:
        if step % grade_every:
            return False
        g = float(calc.get_property("grade", work))
        result.grades.append((step, g))
        result.max_grade = max(result.max_grade, g)
        if g > gamma_min:
            why = unphysical(work, atoms, **limits)
            if why:
                result.unphysical = f"step {step}: {why}"
                return True
            snap = work.copy()
            snap.calc = None
            snap.info["MV_grade"] = g
            snap.info["md_step"] = step
            result.snapshots.append(snap)
        return g > gamma_max

    work.get_forces()
    if check(0):
        result.aborted = True
        return result
    for step in range(1, steps + 1):
        set_targets(
            dyn, ensemble, ramp(t_start, t_end, step, steps), ramp(p_start, p_end, step, steps)
        )
        dyn.run(1)
        result.step = step
        if check(step):
            result.aborted = True
            break
    return result
