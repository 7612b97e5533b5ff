"""MD: NVE, NVT (Langevin, Nosé–Hoover chain, Berendsen) and NPT (Berendsen), with linear
temperature and pressure schedules, a saved trajectory and restart from its last frame.

A schedule is a number (constant) or ``[start, end]`` (linear over the run's steps);
thermostats without a settable target (Nosé–Hoover chain) refuse a ramp rather than
silently holding the start value.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autopot.dynamics import ENSEMBLES, make_dynamics, ramp, set_targets
from autopot.simulate.common import SimulationError, check_choice, check_number, merge

if TYPE_CHECKING:
    from ase import Atoms

log = logging.getLogger("autopot.simulate.md")

DEFAULTS: dict[str, Any] = {
    "ensemble": "nve",
    "steps": 1000,
    "timestep_fs": 2.0,
    "temperature_K": 300.0,
    "pressure_GPa": 0.0,
    "friction_per_fs": 0.01,
    "tdamp_fs": 100.0,
    "pdamp_fs": 1000.0,
    "compressibility_per_GPa": 0.01,
    "interval": 10,
    "seed": 0,
    "init_velocities": True,
    "restart": True,
    "trajectory": "md.traj",
}


def _schedule(name: str, value: Any, minimum: float | None) -> tuple[float, float]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise SimulationError(f"expected a number or [start, end], got {value!r}", field=name)
        start, end = value
    else:
        start = end = value
    return (check_number(name, start, minimum=minimum), check_number(name, end, minimum=minimum))


def check(params: dict[str, Any]) -> dict[str, Any]:
    p = merge(DEFAULTS, params)
    check_choice("ensemble", p["ensemble"], ENSEMBLES)
    check_number("steps", p["steps"], minimum=0, integer=True)
    check_number("timestep_fs", p["timestep_fs"], minimum=0, strict=True)
    t = _schedule("temperature_K", p["temperature_K"], 0.0)
    _schedule("pressure_GPa", p["pressure_GPa"], None)
    for name in ("friction_per_fs", "tdamp_fs", "pdamp_fs", "compressibility_per_GPa"):
        check_number(name, p[name], minimum=0, strict=True)
    check_number("interval", p["interval"], minimum=1, integer=True)
    check_number("seed", p["seed"], minimum=0, integer=True)
    if p["ensemble"] == "nose_hoover" and t[0] != t[1]:
        raise SimulationError(
            "the Nose-Hoover chain has no settable target temperature; "
            "ramp with langevin, berendsen or npt",
            field="temperature_K",
        )
    if not isinstance(p["trajectory"], str) or not p["trajectory"]:
        raise SimulationError("expected a file name", field="trajectory")
    return p


def _dynamics(atoms: Atoms, p: dict[str, Any], t0: float, p0: float) -> Any:
    return make_dynamics(
        atoms,
        p["ensemble"],
        timestep_fs=p["timestep_fs"],
        temperature_K=t0,
        pressure_GPa=p0,
        friction_per_fs=p["friction_per_fs"],
        tdamp_fs=p["tdamp_fs"],
        pdamp_fs=p["pdamp_fs"],
        compressibility_per_GPa=p["compressibility_per_GPa"],
        rng=np.random.default_rng(p["seed"]),
    )


def run(
    atoms: Atoms, calculator: Any, *, directory: str | Path = ".", **params: Any
) -> dict[str, Any]:
    """Run (or continue) MD; the trajectory goes to ``directory/trajectory``.

    With ``restart`` and an existing trajectory, MD continues from its last frame
    (positions, momenta, cell) for the steps not done yet.
    """
    from ase.io import Trajectory, read
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    p = check(params)
    t_start, t_end = _schedule("temperature_K", p["temperature_K"], 0.0)
    p_start, p_end = _schedule("pressure_GPa", p["pressure_GPa"], None)
    path = Path(directory) / p["trajectory"]
    done = 0
    work = atoms.copy()
    if p["restart"] and path.is_file() and path.stat().st_size:
        frames = read(path, index=":")
        assert isinstance(frames, list)  # index=":": every frame
        last = frames[-1]
        done = int(last.info.get("md_step", (len(frames) - 1) * p["interval"]))
        work = last.copy()
        work.set_momenta(last.get_momenta())
        log.info("restarting MD from step %d of %s", done, path)
    elif p["init_velocities"] and t_start > 0:
        MaxwellBoltzmannDistribution(
            work, temperature_K=t_start, rng=np.random.default_rng(p["seed"])
        )
        Stationary(work)
    work.calc = calculator
    total = p["steps"]

    def target(start: float, end: float, step: int) -> float:
        return ramp(start, end, step, total)

    dyn = _dynamics(work, p, target(t_start, t_end, done), target(p_start, p_end, done))
    traj = Trajectory(str(path), "a" if done else "w", work)
    temps: list[float] = []
    state = {"step": done}

    def record() -> None:
        work.get_potential_energy()  # so that every frame carries its energy and forces
        work.get_forces()
        work.info["md_step"] = state["step"]
        traj.write(work)
        temps.append(float(work.get_temperature()))

    def advance() -> None:
        step = state["step"] = done + dyn.nsteps  # observers also run before the first step
        if step == done:
            return
        set_targets(dyn, p["ensemble"], target(t_start, t_end, step), target(p_start, p_end, step))
        if step % p["interval"] == 0:
            record()

    if not done:
        record()
    dyn.attach(advance, interval=1)
    remaining = max(total - done, 0)
    try:
        dyn.run(remaining)
    finally:
        traj.close()
    return {
        "steps_done": state["step"],
        "restarted_from": done,
        "n_frames": len(read(path, index=":")),
        "trajectory": p["trajectory"],
        "temperature_final_K": float(work.get_temperature()),
        "temperature_mean_K": float(np.mean(temps)) if temps else None,
        "energy_final": float(work.get_potential_energy()),
        "total_energy_final": float(work.get_total_energy()),
        "volume_final": float(work.get_volume()) if work.cell.rank == 3 else None,
        "natoms": len(work),
    }
