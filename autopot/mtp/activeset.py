"""The MLIP-2 active set (D-optimality, maxvol) built on our own energy jacobian.

Reproduces ``mlp calc-grade`` / ``mlp select-add`` (MLIP-2 ``MaxVol`` and
``MaxvolSelection``): the active-set matrix A starts as eps*I (eps = 1e-5); rows are
dE/dtheta / N per configuration ("vibrations" weighting, the MLIP-2 default) or dE_i/dtheta
per atom (neighbourhood mode); greedy swaps of the row with the largest |c| into A while
max |c| > 1.0000001, with Sherman-Morrison updates of A^-1 and of C = B A^-1.  The grade
of a configuration is max |b A^-1| over its rows.  motep's own ``Grader`` differs (no 1/N,
a singular start when rows < parameters, other tolerances), hence this module.

Persistence: ``<pot>.als.npz`` (see :func:`autopot.mtp.mtpfile.activeset_path`) holds A,
A^-1, which training configuration owns each row, the mode and the sha256 of the potential
and a fingerprint of the training set, so a stale file is detected and rebuilt.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autopot.errors import MTPError

from .jacobian import MTPArrays, batches, default_jobs, energy_jacobian

INIT_THRESHOLD = 1e-5
SWAP_THRESHOLD = 1.0000001
SELECT_THRESHOLD = 1.1
MODES = ("configuration", "neighborhood")
FORMAT_VERSION = 1


@dataclass
class MaxVol:
    """MLIP-2's incremental maxvol: A (n x n), A^-1 and the owner of every row of A."""

    a: np.ndarray
    ainv: np.ndarray
    owner: np.ndarray  # -1: an initial eps row

    @classmethod
    def start(cls, n: int, eps: float = INIT_THRESHOLD) -> MaxVol:
        return cls(a=eps * np.eye(n), ainv=np.eye(n) / eps, owner=np.full(n, -1, dtype=np.int64))

    def coefficients(self, rows: np.ndarray) -> np.ndarray:
        return rows @ self.ainv

    def maximize(
        self,
        rows: np.ndarray,
        owners: np.ndarray,
        *,
        threshold: float,
        swap_limit: int | None = None,
    ) -> int:
        """Swap pool rows into A while max |c| > ``threshold``; returns the swap count.

        Exactly MLIP-2's ``MaxVol::MaximizeVol``: the first maximal |c| in row-major order
        is swapped in, the row it replaces goes back to the pool (it may return later).
        """
        rows = np.asarray(rows, dtype=float)
        owners = np.asarray(owners, dtype=np.int64)
        if len(rows) > 1:
            # Bitwise-identical rows (copies of a configuration, symmetric atoms) can never
            # both be in A; keeping only the first stops rounding from breaking their tie
            # in favour of a later copy, which would credit two owners for one row.
            _, first = np.unique(rows, axis=0, return_index=True)
            if len(first) < len(rows):
                keep = np.sort(first)
                rows, owners = rows[keep], owners[keep]
        b = np.array(rows, dtype=float, copy=True)
        own = np.array(owners, dtype=np.int64, copy=True)
        c = b @ self.ainv
        swaps = 0
        limit = np.inf if swap_limit is None else swap_limit
        while swaps < limit and c.size:
            flat = int(np.argmax(np.abs(c)))
            i0, j0 = divmod(flat, c.shape[1])
            cij = c[i0, j0]
            if abs(cij) <= threshold:
                break
            row = c[i0].copy()
            row[j0] -= 1.0
            # A^-1 update (Sherman-Morrison): A' = A + e_j0 (b_i0 - a_j0)^T
            self.ainv -= np.outer(self.ainv[:, j0], row) / cij
            col = c[:, j0] / cij
            col[i0] += 1.0 / cij
            c -= np.outer(col, row)
            tmp = self.a[j0].copy()
            self.a[j0] = b[i0]
            b[i0] = tmp
            own[i0], self.owner[j0] = self.owner[j0], own[i0]
            swaps += 1
        return swaps


def fingerprint(images: Sequence) -> str:
    """Cheap content hash of configurations (numbers, cell, positions)."""
    h = hashlib.sha256()
    for a in images:
        h.update(np.asarray(a.numbers, dtype=np.int64).tobytes())
        h.update(np.asarray(a.cell[:], dtype=float).round(8).tobytes())
        h.update(np.asarray(a.positions, dtype=float).round(8).tobytes())
    return h.hexdigest()


def _rows_job(args) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr, images, per_atom, ainv = args
    res = energy_jacobian(arr, images, per_atom=per_atom)
    rows = res.rows if per_atom else res.rows / res.natoms[:, None]
    if ainv is None:
        return rows, res.energies, res.natoms
    g = np.abs(rows @ ainv).max(axis=1) if len(rows) else np.zeros(0)
    if per_atom:
        off = np.concatenate([[0], np.cumsum(res.natoms)])
        grades = np.array(
            [g[off[k] : off[k + 1]].max() if res.natoms[k] else 0.0 for k in range(len(images))]
        )
        return grades, g, res.natoms
    return g, res.energies, res.natoms


@functools.lru_cache(maxsize=1)
def _openblas_handles() -> tuple:
    """ctypes handles of the OpenBLAS libraries loaded in this process (best effort; looked
    up once: numpy and scipy load theirs at import)."""
    import ctypes
    import re

    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return ()
    out = []
    for lib in sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", maps))):
        try:
            out.append(ctypes.CDLL(lib))
        except OSError:
            continue
    return tuple(out)


def _blas_fn(handle, kind: str):
    for prefix in ("scipy_openblas_", "openblas_"):
        for suffix in ("64_", ""):
            fn = getattr(handle, f"{prefix}{kind}_num_threads{suffix}", None)
            if fn is not None:
                return fn
    return None


def single_thread_blas() -> None:
    """Pin OpenBLAS to one thread in this process (best effort).

    Our workers already use every core; OpenBLAS threads on top of them oversubscribe a
    small machine and made 2-process grading twice slower than it should be.
    """
    for handle in _openblas_handles():
        fn = _blas_fn(handle, "set")
        if fn is not None:
            fn(1)


#: glibc ``mallopt`` parameters and the values grading sets (glibc's defaults: 128 KiB,
#: raised dynamically): the kernels allocate a few MB of temporaries per batch; above the
#: mmap threshold each comes from fresh pages, and zero-filling them on first touch was
#: three quarters of the time spent outside the neighbour list (0.67 -> 0.17 ms per 54-atom
#: configuration at level 08).  Set once per process and kept (switching back would also
#: switch off glibc's dynamic threshold); the cost is up to 128 MiB of freed heap kept.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_HEAP_SETTINGS = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 128 << 20}


@functools.lru_cache(maxsize=1)
def heap_temporaries() -> bool:
    """Apply ``_HEAP_SETTINGS`` with glibc's ``mallopt`` (once); False on another libc."""
    import ctypes

    try:
        fn = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    fn.argtypes, fn.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(fn(param, value) == 1 for param, value in _HEAP_SETTINGS.items())


def worker_init() -> None:
    """Initializer of grading worker processes: one BLAS thread, heap temporaries."""
    single_thread_blas()
    heap_temporaries()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """OpenBLAS on one thread and large temporaries from the heap for the block.

    Grading multiplies many small matrices: OpenBLAS's threads spin for each of them and
    doubled the CPU time of in-process grading (1.7 -> 0.8 ms per 32-atom configuration)
    without making it faster.  Also applies :func:`heap_temporaries`.
    """
    saved = []
    for handle in _openblas_handles():
        get, set_ = _blas_fn(handle, "get"), _blas_fn(handle, "set")
        if get is not None and set_ is not None:
            saved.append((set_, int(get())))
            set_(1)
    heap_temporaries()
    try:
        yield
    finally:
        for set_, n in saved:
            set_(n)


#: the jobs of the running :func:`_map_batches`, inherited by its forked workers instead
#: of pickling every batch of ``Atoms`` and A^-1 into them
_FORKED_JOBS: list = []


def _forked_job(k: int):
    return _rows_job(_FORKED_JOBS[k])


def _map_batches(arr: MTPArrays, images: Sequence, per_atom: bool, ainv, n_jobs: int | None):
    spans = batches(images, arr)
    jobs = [(arr, list(images[s:e]), per_atom, ainv) for s, e in spans]
    n_jobs = default_jobs(len(images)) if n_jobs is None else n_jobs
    if n_jobs > 1 and len(jobs) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        workers = min(n_jobs, len(jobs))
        _FORKED_JOBS[:] = jobs
        try:
            with ProcessPoolExecutor(
                max_workers=workers, mp_context=mp.get_context("fork"), initializer=worker_init
            ) as pool:
                chunk = -(-len(jobs) // (2 * workers))
                return list(pool.map(_forked_job, range(len(jobs)), chunksize=chunk))
        finally:
            _FORKED_JOBS.clear()
    with one_blas_thread():
        return [_rows_job(j) for j in jobs]


def jacobian_rows(
    arr: MTPArrays, images: Sequence, mode: str = "configuration", n_jobs: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Active-set rows of ``images`` and, per row, the index of its configuration."""
    per_atom = _check_mode(mode)
    parts = _map_batches(arr, images, per_atom, None, n_jobs)
    if not parts:
        return np.zeros((0, arr.nparams)), np.zeros(0, dtype=np.int64)
    rows = np.concatenate([p[0] for p in parts])
    natoms = np.concatenate([p[2] for p in parts])
    owners = np.repeat(np.arange(len(images)), natoms) if per_atom else np.arange(len(images))
    return rows, owners


def _check_mode(mode: str) -> bool:
    if mode not in MODES:
        raise MTPError(
            f"grading mode must be one of {', '.join(MODES)}, got {mode!r}", field="mode"
        )
    return mode == "neighborhood"


@dataclass
class ActiveSet:
    """An active set for one potential and one training set."""

    maxvol: MaxVol
    mode: str = "configuration"
    pot_sha256: str = ""
    training_fingerprint: str = ""
    n_training: int = 0
    meta: dict = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        arr: MTPArrays,
        training: Sequence,
        *,
        mode: str = "configuration",
        pot_sha256: str = "",
        eps: float = INIT_THRESHOLD,
        swap_threshold: float = SWAP_THRESHOLD,
        n_jobs: int | None = None,
    ) -> ActiveSet:
        """Select the active set from the training set (``mlp calc-grade``'s first step)."""
        rows, owners = jacobian_rows(arr, training, mode, n_jobs)
        mv = MaxVol.start(arr.nparams, eps)
        mv.maximize(rows, owners, threshold=swap_threshold)
        return cls(
            maxvol=mv,
            mode=mode,
            pot_sha256=pot_sha256,
            training_fingerprint=fingerprint(training),
            n_training=len(training),
        )

    def grade(self, arr: MTPArrays, images: Sequence, n_jobs: int | None = None) -> np.ndarray:
        """Extrapolation grade (max |c|) of each configuration."""
        per_atom = _check_mode(self.mode)
        parts = _map_batches(arr, images, per_atom, self.maxvol.ainv, n_jobs)
        return np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)

    def grade_atoms(self, arr: MTPArrays, atoms) -> tuple[float, np.ndarray | None]:
        """Grade of one configuration and, in neighbourhood mode, per-atom grades."""
        per_atom = _check_mode(self.mode)
        with one_blas_thread():
            grades, g, _ = _rows_job((arr, [atoms], per_atom, self.maxvol.ainv))
        return float(grades[0]), (g if per_atom else None)

    def training_owners(self) -> np.ndarray:
        """Indices of training configurations that own an active-set row."""
        o = self.maxvol.owner
        return np.unique(o[o >= 0])

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        import io
        import json

        from autopot.atomic import atomic_write_bytes

        buf = io.BytesIO()
        meta = {
            "format": FORMAT_VERSION,
            "mode": self.mode,
            "pot_sha256": self.pot_sha256,
            "training_fingerprint": self.training_fingerprint,
            "n_training": self.n_training,
            **self.meta,
        }
        np.savez_compressed(
            buf,
            a=self.maxvol.a,
            ainv=self.maxvol.ainv,
            owner=self.maxvol.owner,
            meta=np.array(json.dumps(meta)),
        )
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> ActiveSet:
        import json
        import zipfile

        path = str(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                mv = MaxVol(a=z["a"], ainv=z["ainv"], owner=z["owner"])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise MTPError(
                f"not a readable active-set file ({exc.__class__.__name__})", file=path
            ) from None
        if meta.get("format") != FORMAT_VERSION:
            raise MTPError(f"unsupported active-set format {meta.get('format')!r}", file=path)
        n = mv.a.shape[0]
        if mv.a.shape != (n, n) or mv.ainv.shape != (n, n) or mv.owner.shape != (n,):
            raise MTPError("inconsistent matrix shapes", file=path)
        extra = {
            k: v
            for k, v in meta.items()
            if k not in ("format", "mode", "pot_sha256", "training_fingerprint", "n_training")
        }
        return cls(
            maxvol=mv,
            mode=meta["mode"],
            pot_sha256=meta["pot_sha256"],
            training_fingerprint=meta["training_fingerprint"],
            n_training=int(meta["n_training"]),
            meta=extra,
        )
