"""The simulations' physics, in process, on EMT Cu: tests that fail when a number is wrong."""

from __future__ import annotations

import contextlib
import io
import logging

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from autopot.simulate import elasticity, eos, md, neb, opt, phonon, sfe, vacancy


@pytest.fixture(scope="module")
def cu():
    return bulk("Cu", "fcc", a=3.6, cubic=True)


def test_eos_bulk_modulus_equals_elastic_constants(cu):
    """B0 of the Birch–Murnaghan fit = (C11 + 2 C12)/3 of the strain–stress fit, within 2 %."""
    e = eos.run(cu, EMT(), n_points=7, max_strain=0.04)
    c = elasticity.run(cu, EMT())
    b_cij = (c["C11_GPa"] + 2 * c["C12_GPa"]) / 3
    assert abs(e["B0_GPa"] / b_cij - 1) < 0.02, (e["B0_GPa"], b_cij)
    assert e["converged"] and 3.58 < e["a0_cubic"] < 3.60  # EMT Cu: 3.5898 Å
    # a cubic crystal: C11 = C22 = C33, C12 = C13 = C23, C44 = C55 = C66, zeros elsewhere
    cmat = np.array(c["C_GPa"])
    assert np.allclose(np.diag(cmat)[:3], c["C11_GPa"], rtol=1e-3)
    assert abs(cmat[0, 3]) < 1.0 and abs(cmat[3, 4]) < 1.0
    assert c["K_voigt_GPa"] == pytest.approx(c["K_reuss_GPa"], rel=1e-6)  # cubic: K_V = K_R
    assert c["G_reuss_GPa"] <= c["G_hill_GPa"] <= c["G_voigt_GPa"]


def test_phonon_acoustic_modes_vanish_at_gamma():
    r = phonon.run(
        bulk("Cu", "fcc", a=3.5898),
        EMT(),
        supercell=[3, 3, 3],
        band_points=11,
        mesh=[6, 6, 6],
        t_step=250.0,
    )
    assert r["gamma_acoustic_max_abs_THz"] < 0.05
    assert 6.0 < r["band_max_THz"] < 10.0  # EMT Cu: ~8 THz at X
    assert r["band_min_THz"] > -0.05  # a relaxed fcc crystal is dynamically stable
    assert r["band_path"].startswith("GX")
    cv = r["thermal_heat_capacity_J_K_mol"]
    assert cv[-1] == pytest.approx(3 * 8.314462618, rel=0.03)  # Dulong–Petit at 1000 K


def test_vacancy_hop_is_symmetric(cu):
    """The hop between two equivalent vacancy sites: forward = backward barrier within 1 meV."""
    r = vacancy.run(cu, EMT(), n_images=3)
    assert abs(r["migration_barrier"] - r["migration_barrier_backward"]) < 1e-3
    assert 0.5 < r["migration_barrier"] < 1.1 and 1.0 < r["formation_energy"] < 1.5
    assert r["neb_converged"]
    energies = r["migration_energies"]
    assert np.argmax(energies) == len(energies) // 2  # saddle in the middle of the path


def test_perfect_crystal_has_no_stacking_fault_energy(cu):
    """No fault (fraction 0) and a full lattice translation (3 Shockley partials) give 0."""
    for fraction in (0.0, 3.0):
        r = sfe.run(cu, EMT(), fraction=fraction, relax="none")
        assert abs(r["sfe_mJ_m2"]) < 1e-6, fraction
    bcc = sfe.faulted_cells("bcc", "Cu", 2.87, 4, 2.0)  # b = a/2<111>: a lattice vector
    for a in bcc[:2]:
        a.calc = EMT()
    assert abs(bcc[0].get_potential_energy() - bcc[1].get_potential_energy()) < 1e-8


def test_stacking_fault_matches_mlippykit_structure(cu):
    """Our tilted cell and mlippykit's create_sf_fcc describe the same intrinsic fault."""
    from mlippykit.configurations.stacking_faults import create_sf_fcc

    ours = sfe.run(cu, EMT(), relax="none")
    # mlippykit logs to the root logger with arguments its message has no place for
    # (logging.info("ax =", ax)): keep those records from being formatted at all
    root = logging.getLogger()
    level, root.level = root.level, logging.WARNING
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            faulted, perfect, area = create_sf_fcc(size=(1, 4, 1), symbol="Cu", a0=ours["a0"])
    finally:
        root.setLevel(level)
    for a in (faulted, perfect):
        a.calc = EMT()
    theirs = (faulted.get_potential_energy() - perfect.get_potential_energy()) / area * 16021.766208
    assert ours["sfe_unrelaxed_mJ_m2"] == pytest.approx(theirs, abs=0.01)
    unstable = sfe.run(cu, EMT(), fraction=0.5, relax="none")
    assert unstable["sfe_mJ_m2"] > 100  # the unstable fault is far above the intrinsic one


def test_opt_relaxes_cell_and_forces(cu):
    strained = cu.copy()
    strained.set_cell(cu.cell * 1.03, scale_atoms=True)
    strained.rattle(0.05, seed=1)
    r = opt.run(strained, EMT(), filter="FrechetCell", fmax=1e-3)
    assert r["converged"] and r["max_force"] < 1e-3
    assert r["volume"] == pytest.approx(3.5898**3, rel=1e-3)


def test_md_nve_conserves_energy_and_restarts(cu, tmp_path):
    atoms = cu.repeat(2)
    first = md.run(
        atoms, EMT(), directory=tmp_path, steps=50, timestep_fs=1.0, temperature_K=300, interval=10
    )
    assert first["steps_done"] == 50 and first["n_frames"] == 6
    from ase.io import read

    frames = read(tmp_path / "md.traj", index=":")
    totals = [f.get_total_energy() for f in frames]
    assert np.ptp(totals) / len(atoms) < 1e-3  # eV/atom over the run
    more = md.run(
        atoms, EMT(), directory=tmp_path, steps=80, timestep_fs=1.0, temperature_K=300, interval=10
    )
    assert more["restarted_from"] == 50 and more["steps_done"] == 80 and more["n_frames"] == 9


def test_temperature_ramp_is_followed(cu, tmp_path):
    r = md.run(
        cu.repeat(2),
        EMT(),
        directory=tmp_path,
        ensemble="berendsen",
        steps=300,
        temperature_K=[100, 900],
        tdamp_fs=10.0,
        interval=50,
    )
    assert r["temperature_final_K"] > 400  # heated towards 900 K, started at 100 K


@pytest.mark.parametrize(
    "module, params, field",
    [
        (opt, {"optimizer": "Newton"}, "optimizer"),
        (opt, {"filter": "Cell"}, "filter"),
        (opt, {"fmx": 0.1}, "fmx"),
        (md, {"ensemble": "nvx"}, "ensemble"),
        (md, {"temperature_K": -1.0}, "temperature_K"),
        (md, {"temperature_K": [300, -5]}, "temperature_K"),
        (eos, {"n_points": 2}, "n_points"),
    ],
)
def test_bad_parameters_name_the_field(module, params, field, cu):
    from autopot.simulate.common import SimulationError

    with pytest.raises(SimulationError) as info:
        module.run(cu, EMT(), **params)
    assert info.value.field == field


def test_neb_endpoints_must_match(cu):
    from autopot.simulate.common import SimulationError

    small = cu.copy()
    del small[0]
    with pytest.raises(SimulationError) as info:
        neb.from_endpoints(cu, small, EMT())
    assert info.value.field == "final" and "atoms" in str(info.value)
