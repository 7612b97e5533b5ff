"""NEB and NEB_FROM_ENDPOINTS: climbing-image nudged elastic band (ASE).

``neb`` takes a path of images as given (endpoints included); ``from_endpoints`` relaxes
both endpoints (positions only, fixed cell), interpolates the intermediate images with
IDPP (or linearly) and runs ``neb``. The barriers are measured from each endpoint to the
highest image: forward from the initial state, backward from the final one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from autopot.simulate.common import (
    SimulationError,
    atoms_to_dict,
    check_choice,
    check_number,
    check_relax,
    merge,
    relax,
)

if TYPE_CHECKING:
    from ase import Atoms

DEFAULTS: dict[str, Any] = {
    "climb": True,
    "optimizer": "FIRE",
    "fmax": 0.02,
    "steps": 1000,
    "spring": 0.1,
    "method": "improvedtangent",
}
ENDPOINT_DEFAULTS: dict[str, Any] = {
    **DEFAULTS,
    "n_images": 5,
    "interpolation": "idpp",
    "relax_endpoints": True,
    "endpoint_optimizer": "BFGS",
    "endpoint_fmax": 0.01,
    "endpoint_steps": 1000,
}


def check(params: dict[str, Any], defaults: dict[str, Any] = DEFAULTS) -> dict[str, Any]:
    p = merge(defaults, params)
    check_relax("", p["optimizer"], p["fmax"], p["steps"])
    check_number("spring", p["spring"], minimum=0, strict=True)
    check_choice("method", p["method"], ("aseneb", "improvedtangent", "eb", "spline", "string"))
    return p


def check_endpoints(params: dict[str, Any]) -> dict[str, Any]:
    p = check(params, ENDPOINT_DEFAULTS)
    check_number("n_images", p["n_images"], minimum=1, integer=True)
    check_choice("interpolation", p["interpolation"], ("idpp", "linear"))
    check_relax("endpoint_", p["endpoint_optimizer"], p["endpoint_fmax"], p["endpoint_steps"])
    return p


def check_images(images: Sequence[Atoms], field: str = "images") -> None:
    """Same atom count, species order and cell along the whole path."""
    if len(images) < 2:
        raise SimulationError("a path needs at least two images", field=field)
    first = images[0]
    for i, image in enumerate(images[1:], 1):
        if len(image) != len(first):
            raise SimulationError(
                f"image {i} has {len(image)} atoms, image 0 has {len(first)}", field=field
            )
        if list(image.numbers) != list(first.numbers):
            raise SimulationError(f"image {i} has another species order than image 0", field=field)
        if not np.allclose(image.cell.array, first.cell.array, atol=1e-6):
            raise SimulationError(f"image {i} has another cell than image 0", field=field)


def run(images: Sequence[Atoms], calculator: Any, **params: Any) -> dict[str, Any]:
    """NEB over ``images`` (the endpoints are kept fixed)."""
    import ase.optimize
    from ase.mep import NEB

    p = check(params)
    check_images(images)
    path = [a.copy() for a in images]
    for a in path:
        a.calc = calculator
    band = NEB(
        path, climb=p["climb"], k=p["spring"], method=p["method"], allow_shared_calculator=True
    )
    opt = getattr(ase.optimize, p["optimizer"])(band, logfile=None)
    converged = bool(opt.run(fmax=p["fmax"], steps=p["steps"]))
    energies = np.array([a.get_potential_energy() for a in path])
    top = int(np.argmax(energies))
    distances = np.concatenate(
        [
            [0.0],
            np.cumsum(
                [
                    np.linalg.norm(_mic(b.positions - a.positions, a))
                    for a, b in zip(path, path[1:], strict=False)
                ]
            ),
        ]
    )
    return {
        "energies": energies.tolist(),
        "relative_energies": (energies - energies[0]).tolist(),
        "path_distances": distances.tolist(),
        "barrier_forward": float(energies[top] - energies[0]),
        "barrier_backward": float(energies[top] - energies[-1]),
        "reaction_energy": float(energies[-1] - energies[0]),
        "saddle_index": top,
        "n_images": len(path),
        "converged": converged,
        "steps": int(opt.nsteps),
        "saddle": atoms_to_dict(path[top]),
    }


def _mic(delta: np.ndarray, atoms: Atoms) -> np.ndarray:
    from ase.geometry import find_mic

    if atoms.pbc.any():
        return find_mic(delta, atoms.cell, atoms.pbc)[0]
    return delta


def from_endpoints(initial: Atoms, final: Atoms, calculator: Any, **params: Any) -> dict[str, Any]:
    """Relax both endpoints, interpolate, then NEB."""
    from ase.mep import NEB

    p = check_endpoints(params)
    check_images([initial, final], field="final")
    start, end = initial.copy(), final.copy()
    relaxed = {}
    if p["relax_endpoints"]:
        for name, a in (("initial", start), ("final", end)):
            relaxed[name] = relax(
                a,
                calculator,
                optimizer=p["endpoint_optimizer"],
                fmax=p["endpoint_fmax"],
                steps=p["endpoint_steps"],
            )
    images = [start] + [start.copy() for _ in range(p["n_images"])] + [end]
    band = NEB(images, allow_shared_calculator=True)
    band.interpolate(method=p["interpolation"], mic=bool(start.pbc.any()))
    out = run(images, calculator, **{k: p[k] for k in DEFAULTS})
    out["endpoints_converged"] = all(r["converged"] for r in relaxed.values()) if relaxed else None
    return out
