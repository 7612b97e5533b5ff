"""Energy and dE/dtheta of an MTP for many configurations at once, vectorised in numpy.

Why not motep's engine: grading needs only energy derivatives, but motep's train mode also
builds force and stress derivatives per atom (the expensive part) and uses ASE's
pure-Python neighbour list.  Here neighbours come from matscipy (compiled), and all pairs of
a batch of configurations are processed together: radial basis, basic moments, the
``alpha_index_times`` contraction forward, its adjoint backward, then dE/d(radial coeffs)
as (adjoint-weighted angular part) x (Chebyshev basis).  Parameter order is motep's
(moment_coeffs, species_coeffs, radial_coeffs), so rows equal ``jac_energy(...).parameters``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from autopot.errors import MTPError

#: pairs per batch: bounds memory (~ pairs x basic moments doubles) while amortising loops
PAIRS_PER_BATCH = 150_000


@dataclass
class MTPArrays:
    """The numbers of an MTP that the kernels need (picklable, no motep objects)."""

    species: np.ndarray  # atomic number per type
    scaling: float
    rmin: float
    rmax: float
    rbs: int
    rfc: int
    radial: np.ndarray  # (spc, spc, rfc, rbs)
    species_coeffs: np.ndarray
    moment_coeffs: np.ndarray
    basic: np.ndarray  # (nb, 4)
    times: np.ndarray  # (nt, 4)
    mapping: np.ndarray
    amc: int

    @classmethod
    def from_mtp(cls, data, species: Sequence[int]) -> MTPArrays:
        return cls(
            species=np.asarray(species, dtype=int),
            scaling=float(data.scaling),
            rmin=float(data.radial_basis.min),
            rmax=float(data.radial_basis.max),
            rbs=int(data.radial_basis.size),
            rfc=int(data.radial_funcs_count),
            radial=np.asarray(data.radial_coeffs, dtype=float),
            species_coeffs=np.asarray(data.species_coeffs, dtype=float),
            moment_coeffs=np.asarray(data.moment_coeffs, dtype=float),
            basic=np.asarray(data.alpha_index_basic, dtype=int).reshape(-1, 4),
            times=np.asarray(data.alpha_index_times, dtype=int).reshape(-1, 4),
            mapping=np.asarray(data.alpha_moment_mapping, dtype=int),
            amc=int(data.alpha_moments_count),
        )

    @property
    def spc(self) -> int:
        return len(self.species)

    @property
    def nparams(self) -> int:
        return len(self.mapping) + self.spc + self.radial.size


def types_of(atoms, species: np.ndarray) -> np.ndarray:
    """MTP type index of every atom; unknown species raise (never silently mapped)."""
    lut = {int(z): t for t, z in enumerate(species)}
    try:
        return np.fromiter((lut[int(z)] for z in atoms.numbers), dtype=int, count=len(atoms))
    except KeyError as exc:
        from ase.data import chemical_symbols

        z = int(exc.args[0])
        sym = chemical_symbols[z] if 0 <= z < len(chemical_symbols) else str(z)
        raise MTPError(f"configuration contains {sym}, which is not a species of the "
                       "potential under this atom_types mapping", field="atom_types") from None


def _pairs(atoms, cutoff: float):
    from matscipy.neighbours import neighbour_list

    if len(atoms) == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros((0, 3))
    if atoms.cell.rank < 3 and not any(atoms.pbc):
        atoms = atoms.copy()
        span = atoms.positions.max(0) - atoms.positions.min(0)
        atoms.set_cell(np.diag(span + 2 * cutoff + 1.0))
        atoms.pbc = False
    i, j, d = neighbour_list("ijD", atoms, cutoff)
    return i, j, d


def _chebyshev(r: np.ndarray, arr: MTPArrays) -> np.ndarray:
    x = 2.0 * (r - arr.rmin) / (arr.rmax - arr.rmin) - 1.0
    diff = arr.rmax - r
    smooth = np.where(diff > 0, arr.scaling * diff * diff, 0.0)
    q = np.empty((len(r), arr.rbs))
    q[:, 0] = smooth
    if arr.rbs > 1:
        q[:, 1] = x * smooth
    for k in range(2, arr.rbs):
        q[:, k] = 2.0 * x * q[:, k - 1] - q[:, k - 2]
    return q


def _segment_sum(x: np.ndarray, seg: np.ndarray, nseg: int) -> np.ndarray:
    """Sum rows of ``x`` into ``nseg`` groups; ``seg`` is sorted ascending."""
    out = np.zeros((nseg, *x.shape[1:]))
    if len(seg) == 0:
        return out
    counts = np.bincount(seg, minlength=nseg)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    nz = counts > 0
    out[nz] = np.add.reduceat(x, starts[nz], axis=0)
    return out


@dataclass
class BatchResult:
    energies: np.ndarray  # per configuration
    rows: np.ndarray  # (n_rows, nparams): per configuration or per atom
    natoms: np.ndarray


def energy_jacobian(arr: MTPArrays, images: Sequence, *, per_atom: bool = False) -> BatchResult:
    """Energies and dE/dtheta for ``images`` (one row per configuration, or per atom)."""
    nimg = len(images)
    natoms = np.array([len(a) for a in images], dtype=int)
    ntot = int(natoms.sum())
    atom_off = np.concatenate([[0], np.cumsum(natoms)])
    gi_l, gj_l, d_l, types_l = [], [], [], []
    pair_counts = np.zeros(nimg, dtype=int)
    for c, atoms in enumerate(images):
        t = types_of(atoms, arr.species)
        i, j, d = _pairs(atoms, arr.rmax)
        types_l.append(t)
        gi_l.append(i + atom_off[c])
        gj_l.append(j + atom_off[c])
        d_l.append(d)
        pair_counts[c] = len(i)
    types = np.concatenate(types_l) if types_l else np.zeros(0, int)
    gi = np.concatenate(gi_l) if gi_l else np.zeros(0, int)
    gj = np.concatenate(gj_l) if gj_l else np.zeros(0, int)
    dvec = np.concatenate(d_l) if d_l else np.zeros((0, 3))
    if np.any(gi[1:] < gi[:-1]):  # reduceat needs pairs grouped by central atom
        order = np.argsort(gi, kind="stable")
        gi, gj, dvec = gi[order], gj[order], dvec[order]
    spc, rfc, rbs = arr.spc, arr.rfc, arr.rbs
    nb = len(arr.basic)
    r = np.sqrt(np.einsum("pk,pk->p", dvec, dvec))
    if np.any(r < 1e-8):
        raise MTPError("two atoms at the same position", field="positions")
    u = dvec / r[:, None]
    q = _chebyshev(r, arr)
    ti, tj = types[gi], types[gj]
    # radial functions f[p, mu]
    if spc == 1:
        f = q @ arr.radial[0, 0].T
    else:
        f = np.empty((len(r), rfc))
        tp = ti * spc + tj
        flat = arr.radial.reshape(spc * spc, rfc, rbs)
        for t in np.unique(tp):
            m = tp == t
            f[m] = q[m] @ flat[t].T
    # angular parts A[p, b] = ux^a uy^b uz^c
    maxp = int(arr.basic[:, 1:].max()) if nb else 0
    pw = np.ones((maxp + 1, len(r), 3))
    for k in range(1, maxp + 1):
        pw[k] = pw[k - 1] * u
    ang = np.empty((len(r), nb))
    for b, (_, a, bb, cc) in enumerate(arr.basic):
        ang[:, b] = pw[a, :, 0] * pw[bb, :, 1] * pw[cc, :, 2]
    mu_of = arr.basic[:, 0]
    mbasic = _segment_sum(f[:, mu_of] * ang, gi, ntot)  # (ntot, nb)
    m = np.zeros((arr.amc, ntot))
    m[:nb] = mbasic.T
    for i1, i2, mult, i3 in arr.times:
        m[i3] += mult * m[i1] * m[i2]
    bvals = m[arr.mapping]  # (nscalar, ntot)
    e_atom = arr.species_coeffs[types] + arr.moment_coeffs @ bvals
    # adjoint of the contraction graph: dE_i/dm
    adj = np.zeros_like(m)
    np.add.at(adj, arr.mapping, np.broadcast_to(arr.moment_coeffs[:, None], bvals.shape))
    for i1, i2, mult, i3 in arr.times[::-1]:
        a3 = adj[i3]
        adj[i1] += mult * a3 * m[i2]
        adj[i2] += mult * a3 * m[i1]
    w = adj[:nb][:, gi].T * ang  # (npairs, nb)
    ind = np.zeros((nb, rfc))
    ind[np.arange(nb), mu_of] = 1.0
    wmu = w @ ind  # (npairs, rfc)
    spc_onehot = (types[:, None] == np.arange(spc)[None, :]).astype(float)
    if per_atom:
        nrows = ntot
        rows = np.empty((ntot, arr.nparams))
        rows[:, : len(arr.mapping)] = bvals.T
        rows[:, len(arr.mapping): len(arr.mapping) + spc] = spc_onehot
        outer = np.zeros((len(r), spc, spc, rfc, rbs))
        if spc == 1:
            outer[:, 0, 0] = wmu[:, :, None] * q[:, None, :]
        else:
            idx = np.arange(len(r))
            outer[idx, ti, tj] = wmu[:, :, None] * q[:, None, :]
        rows[:, len(arr.mapping) + spc:] = _segment_sum(outer.reshape(len(r), -1), gi, ntot)
    else:
        nrows = nimg
        rows = np.empty((nimg, arr.nparams))
        rows[:, : len(arr.mapping)] = _segment_sum(bvals.T, np.repeat(np.arange(nimg), natoms),
                                                    nimg)
        rows[:, len(arr.mapping): len(arr.mapping) + spc] = _segment_sum(
            spc_onehot, np.repeat(np.arange(nimg), natoms), nimg)
        # pairs of configuration c are contiguous because atoms are
        pstart = np.searchsorted(gi, atom_off[:-1])
        pend = np.searchsorted(gi, atom_off[1:])
        if spc == 1:
            for c in range(nimg):
                s, e = pstart[c], pend[c]
                rows[c, len(arr.mapping) + 1:] = (wmu[s:e].T @ q[s:e]).ravel()
        else:
            wt = np.zeros((len(r), spc, rfc))
            qt = np.zeros((len(r), spc, rbs))
            idx = np.arange(len(r))
            wt[idx, ti] = wmu
            qt[idx, tj] = q
            wt = wt.reshape(len(r), -1)
            qt = qt.reshape(len(r), -1)
            for c in range(nimg):
                s, e = pstart[c], pend[c]
                blk = (wt[s:e].T @ qt[s:e]).reshape(spc, rfc, spc, rbs)
                rows[c, len(arr.mapping) + spc:] = blk.transpose(0, 2, 1, 3).ravel()
    del nrows
    energies = _segment_sum(e_atom[:, None], np.repeat(np.arange(nimg), natoms), nimg)[:, 0]
    return BatchResult(energies=energies, rows=rows, natoms=natoms)


def batches(images: Sequence, arr: MTPArrays) -> list[tuple[int, int]]:
    """Split ``images`` into index ranges of about PAIRS_PER_BATCH neighbour pairs."""
    # rough pair estimate: atoms x neighbours in a sphere of the cutoff at metal density
    per_atom = max(8.0, 4.19 * arr.rmax**3 * 0.085)
    out, start, acc = [], 0, 0.0
    for k, a in enumerate(images):
        acc += len(a) * per_atom
        if acc >= PAIRS_PER_BATCH:
            out.append((start, k + 1))
            start, acc = k + 1, 0.0
    if start < len(images):
        out.append((start, len(images)))
    return out


def default_jobs(n_items: int) -> int:
    """Worker processes: all cores for big jobs, none (in-process) for small ones."""
    env = os.environ.get("AUTOPOT_MTP_JOBS")
    if env:
        return max(1, int(env))
    return min(os.cpu_count() or 1, 8) if n_items >= 400 else 1
