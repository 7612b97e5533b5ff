"""PHONON (phonopy): finite displacements in a supercell, force constants, the band
structure along the automatic path, DOS and thermal properties.

The automatic path is ASE's ``bandpath`` of phonopy's primitive cell (phonopy's own
``auto_band_structure`` needs seekpath, one more dependency for the same special points).
No relaxation happens here unless ``relax`` is set: phonons of an unrelaxed structure are
what the user asked for, imaginary modes included (reported as negative frequencies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from autopot.simulate.common import (
    SimulationError,
    check_number,
    check_relax,
    merge,
    relax_as,
    require_periodic,
)

if TYPE_CHECKING:
    from ase import Atoms

DEFAULTS: dict[str, Any] = {
    "supercell": [2, 2, 2],
    "distance": 0.01,
    "band_points": 51,
    "mesh": [12, 12, 12],
    "t_min": 0.0,
    "t_max": 1000.0,
    "t_step": 50.0,
    "relax": False,
    "optimizer": "BFGS",
    "filter": "FrechetCell",
    "fmax": 0.001,
    "steps": 1000,
}


def check(params: dict[str, Any]) -> dict[str, Any]:
    p = merge(DEFAULTS, params)
    for name in ("supercell", "mesh"):
        value = p[name]
        if isinstance(value, int) and not isinstance(value, bool):
            value = p[name] = [value] * 3
        if (
            not isinstance(value, (list, tuple))
            or len(value) not in (3, 9)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            raise SimulationError("expected 3 (or 9) integers", field=name)
        if len(value) == 3 and min(value) < 1:
            raise SimulationError("expected positive integers", field=name)
        p[name] = list(value)
    check_number("distance", p["distance"], minimum=0, strict=True, maximum=0.5)
    check_number("band_points", p["band_points"], minimum=2, integer=True)
    check_number("t_min", p["t_min"], minimum=0)
    check_number("t_max", p["t_max"], minimum=p["t_min"])
    check_number("t_step", p["t_step"], minimum=0, strict=True)
    check_relax("", p["optimizer"], p["fmax"], p["steps"], p["filter"])
    return p


def _phonopy_atoms(atoms: Atoms) -> Any:
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=atoms.cell.array,
        scaled_positions=atoms.get_scaled_positions(),
    )


def _ase_atoms(patoms: Any) -> Atoms:
    from ase import Atoms

    return Atoms(
        symbols=patoms.symbols, cell=patoms.cell, scaled_positions=patoms.scaled_positions, pbc=True
    )


def check_structure(atoms: Atoms) -> None:
    """Refused before any run is recorded (the API calls this too)."""
    require_periodic(atoms, "phonons")


def run(atoms: Atoms, calculator: Any, **params: Any) -> dict[str, Any]:
    from phonopy import Phonopy

    p = check(params)
    check_structure(atoms)
    work = atoms.copy()
    relaxed = None
    if p["relax"]:
        relaxed = relax_as(work, calculator, p, symmetry=True)
    sc = p["supercell"]
    matrix = np.diag(sc) if len(sc) == 3 else np.reshape(sc, (3, 3))
    phonon = Phonopy(_phonopy_atoms(work), supercell_matrix=matrix, primitive_matrix="auto")
    phonon.generate_displacements(distance=p["distance"])
    forces = []
    displaced = phonon.supercells_with_displacements
    assert displaced is not None  # generate_displacements() ran
    for cell in displaced:
        a = _ase_atoms(cell)
        a.calc = calculator
        f = a.get_forces()
        forces.append(f - f.mean(axis=0))  # drift from the calculator breaks the sum rule
    phonon.forces = np.array(forces)
    phonon.produce_force_constants()
    phonon.symmetrize_force_constants()

    phonon.run_qpoints([[0.0, 0.0, 0.0]])
    assert phonon.qpoints is not None
    gamma = np.sort(phonon.qpoints.frequencies[0])
    prim = _ase_atoms(phonon.primitive)
    path = prim.cell.bandpath(npoints=0)
    segments, labels, connections = _segments(path, p["band_points"])
    phonon.run_band_structure(segments, labels=labels, path_connections=connections)  # type: ignore[arg-type]
    band = phonon.band_structure
    phonon.run_mesh(p["mesh"], is_gamma_center=True)
    phonon.run_total_dos()
    dos = phonon.total_dos
    phonon.run_thermal_properties(
        t_min=p["t_min"], t_max=p["t_max"], t_step=p["t_step"], exclude_gamma_acoustic=True
    )
    thermal = phonon.thermal_properties
    fc = phonon.force_constants
    # phonopy types its results Optional until computed: they were, just above
    assert band is not None and dos is not None and thermal is not None and fc is not None
    n_acoustic = 3
    out = {
        "natoms_primitive": len(prim),
        "natoms_supercell": len(phonon.supercell),
        "n_displacements": len(forces),
        "gamma_frequencies_THz": gamma.tolist(),
        "gamma_acoustic_max_abs_THz": float(np.abs(gamma[:n_acoustic]).max()),
        "gamma_max_THz": float(gamma.max()),
        "band_path": path.path,
        "band_labels": labels,
        "band_distances": [np.asarray(d).tolist() for d in band.distances],
        "band_frequencies_THz": [np.asarray(f).tolist() for f in band.frequencies],
        "band_min_THz": float(min(np.min(f) for f in band.frequencies)),
        "band_max_THz": float(max(np.max(f) for f in band.frequencies)),
        "dos_frequencies_THz": np.asarray(dos.frequency_points).tolist(),
        "dos": np.asarray(dos.dos).tolist(),
        "thermal_T_K": np.asarray(thermal.temperatures).tolist(),
        "thermal_free_energy_kJ_mol": np.asarray(thermal.free_energy).tolist(),
        "thermal_entropy_J_K_mol": np.asarray(thermal.entropy).tolist(),
        "thermal_heat_capacity_J_K_mol": np.asarray(thermal.heat_capacity).tolist(),
        "force_constants_shape": list(fc.shape),
    }
    if relaxed is not None:
        out["relaxed_energy"] = relaxed["energy"]
    return out


def _segments(path: Any, npoints: int) -> tuple[list[list[list[float]]], list[str], list[bool]]:
    """Phonopy band segments (q in the primitive's reciprocal basis) from an ASE path.

    ``path.path`` is like ``GXWKGLUWLK,UX``: consecutive points form segments, a comma
    starts a new branch (phonopy's ``path_connections`` False at the jump).
    """
    special = path.special_points
    segments, labels, connections = [], [], []
    for branch in path.path.split(","):
        names = _split_names(branch)
        for a, b in zip(names, names[1:], strict=False):
            qa, qb = np.asarray(special[a]), np.asarray(special[b])
            segments.append([(qa + (qb - qa) * t).tolist() for t in np.linspace(0, 1, npoints)])
            connections.append(True)
        if connections:
            connections[-1] = False
        labels.extend(names)
    return segments, labels, connections


def _split_names(branch: str) -> list[str]:
    """``GX1Y`` → ``[G, X1, Y]`` (a special point is a letter and its digits)."""
    names: list[str] = []
    for ch in branch:
        if ch.isdigit() and names:
            names[-1] += ch
        else:
            names.append(ch)
    return names
