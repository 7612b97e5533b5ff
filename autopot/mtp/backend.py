"""MTP backends behind one interface: motep (default, pure pip) and MLIP-2 ``mlp``.

Both take and produce MLIP-2 files (.mtp, .cfg with an ``atom_types`` mapping), so a user
can switch backend without touching data.  Grades and selections of the motep backend
come from :mod:`autopot.mtp.activeset`, built to match ``mlp calc-grade``/``select-add``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autopot.errors import CalculationError, MTPError

from .activeset import SELECT_THRESHOLD, SWAP_THRESHOLD, ActiveSet, MaxVol, jacobian_rows
from .atom_types import parse_atom_types, species_list
from .error_report import GPA_PER_EV_A3, compute_errors, parse_mlp_errors  # noqa: F401 - re-exported
from .train_options import CONV_WINDOW, resolve_train_args

if TYPE_CHECKING:
    from ase import Atoms


class MlpFailed(MTPError, CalculationError):
    """The mlp binary ran on valid input and failed: a calculation failure, not bad input."""


log = logging.getLogger(__name__)

PathLike = str | Path
Configs = PathLike | Sequence["Atoms"]


@dataclass
class TrainResult:
    """A trained potential and its training-set errors.

    ``errors``: MLIP-2's definitions and keys of :func:`.error_report.compute_errors`
    (``energy_rmse_per_atom`` eV/atom, ``forces_rmse`` eV/A, ``stress_rmse`` GPa, ...);
    ``iterations``: BFGS iterations run (None when the backend does not say).
    """

    potential: Path
    errors: dict[str, float]
    n_configs: int
    wall_seconds: float
    active_set: Path | None = None
    workdir: Path | None = None
    log: Path | None = None
    iterations: int | None = None


@dataclass
class SelectResult:
    """Configurations chosen by D-optimality (indices into the candidates)."""

    indices: np.ndarray
    grades: np.ndarray  # grade of every candidate before selection
    selected: list = field(default_factory=list)


def load_configs(configs: Configs, atom_types: Mapping[str, int], what: str) -> list[Atoms]:
    """A .cfg path or a list of Atoms -> list of Atoms."""
    from ase import Atoms

    from .cfg import read_cfg

    if isinstance(configs, str | Path):
        return read_cfg(configs, atom_types)
    if isinstance(configs, Atoms):
        return [configs]
    out = list(configs)
    for k, a in enumerate(out):
        if not isinstance(a, Atoms):
            raise MTPError(f"item {k} is a {type(a).__name__}, not ase.Atoms", field=what)
    return out


def _file_of(configs: Configs) -> str | None:
    return str(configs) if isinstance(configs, str | Path) else None


def check_species(
    images: Sequence[Atoms],
    atom_types: Mapping[str, int],
    species_count: int,
    *,
    file: str | None,
    pot: PathLike,
) -> None:
    """Every element must be mapped, and mapped to a type the potential has."""
    from ase.data import chemical_symbols

    species = species_list(atom_types, species_count, file=str(pot))
    known = set(species)
    for k, a in enumerate(images):
        bad = sorted(set(np.unique(a.numbers).tolist()) - known)
        if bad:
            sym = chemical_symbols[bad[0]]
            if sym in atom_types:
                msg = (
                    f"configuration {k} contains {sym} (type {atom_types[sym]}) but the "
                    f"potential {pot} has species_count = {species_count}"
                )
            else:
                msg = (
                    f"configuration {k} contains {sym}, which atom_types "
                    f"{','.join(f'{s}={t}' for s, t in atom_types.items())} does not map"
                )
            raise MTPError(msg, file=file, field="atom_types")


class MTPBackend(ABC):
    """What autopot needs from an MTP implementation."""

    name = "abstract"

    def check_train_args(self, train_args: Mapping[str, Any]) -> dict[str, Any]:
        """The filled training options (:func:`.train_options.resolve_train_args`), refused
        when this backend cannot honour one: called by ``train`` and by the workflow's input
        checks, so that a start is refused before anything runs rather than at its first
        training."""
        return resolve_train_args(train_args)

    @abstractmethod
    def train(
        self,
        pot: PathLike,
        training_set: Configs,
        out_pot: PathLike,
        *,
        atom_types: str | Mapping[str, int],
        workdir: PathLike | None = None,
        **train_args: Any,
    ) -> TrainResult: ...

    @abstractmethod
    def calc_efs(
        self, pot: PathLike, configs: Configs, atom_types: str | Mapping[str, int]
    ) -> list[Atoms]: ...

    @abstractmethod
    def calc_grade(
        self,
        pot: PathLike,
        training_set: Configs,
        configs: Configs,
        atom_types: str | Mapping[str, int],
    ) -> np.ndarray: ...

    @abstractmethod
    def select_add(
        self,
        pot: PathLike,
        training_set: Configs,
        candidates: Configs,
        atom_types: str | Mapping[str, int],
        threshold: float = SELECT_THRESHOLD,
        limit: int | None = None,
    ) -> SelectResult: ...


# ----------------------------------------------------------------------------------------
# motep
# ----------------------------------------------------------------------------------------
def load_potential(pot: PathLike, atom_types: Mapping[str, int], *, trained: bool = True):
    """Read ``pot`` and attach the species order given by ``atom_types``."""
    from .mtpfile import is_trained, read_mtp

    data = read_mtp(pot)
    if trained and not is_trained(data):
        raise MTPError("potential is untrained (no coefficients); train it first", file=str(pot))
    data.species = species_list(atom_types, int(data.species_count), file=str(pot))
    data.optimized = ["species_coeffs", "moment_coeffs", "radial_coeffs"]
    return data


def get_active_set(
    pot: PathLike,
    training: Sequence[Atoms],
    atom_types: Mapping[str, int],
    *,
    mode: str = "configuration",
    n_jobs: int | None = None,
    save: bool = False,
) -> ActiveSet:
    """The active set of ``pot`` for ``training``: the one this process used last, or
    ``<pot>.als.npz``, when it matches (sha256 of the potential, mode, fingerprint of the
    training set), else built. Callers copy before changing it (they all do).

    An md_select asks twice (the MD's grading, then select-add): the in-process copy
    saves the second build (0.25 s for 386 Mo-Ta configurations, x250 MDs an iteration)."""
    global _LAST_ACTIVE_SET
    from .activeset import fingerprint
    from .jacobian import MTPArrays
    from .mtpfile import activeset_path, file_sha256

    data = load_potential(pot, atom_types)
    arr = MTPArrays.from_mtp(data, data.species)
    sha = file_sha256(pot)
    path = activeset_path(pot)
    key = (sha, mode, fingerprint(training), arr.nparams)
    als: ActiveSet | None = None
    if _LAST_ACTIVE_SET is not None and _LAST_ACTIVE_SET[0] == key:
        als = _LAST_ACTIVE_SET[1]
    elif path.exists():
        try:
            stored = ActiveSet.load(path)
        except MTPError as exc:
            log.warning("ignoring active set: %s", exc)
        else:
            if (
                stored.pot_sha256,
                stored.mode,
                stored.training_fingerprint,
                stored.maxvol.a.shape[0],
            ) == key:
                als = stored
                save = False  # it is that file
    if als is None:
        als = ActiveSet.build(arr, training, mode=mode, pot_sha256=sha, n_jobs=n_jobs)
    if save:
        als.save(path)
    _LAST_ACTIVE_SET = (key, als)
    return als


#: (key, active set) of the last :func:`get_active_set` of this process.
_LAST_ACTIVE_SET: tuple[tuple[str, str, str, int], ActiveSet] | None = None


def _shard_worker(conn, images, data, setting) -> None:
    """Evaluate loss and gradient of one shard of the training set on request."""
    from motep.loss import LossFunction

    from .activeset import single_thread_blas

    single_thread_blas()
    loss = LossFunction(images, data, setting, engine="cext")
    while True:
        x = conn.recv()
        if x is None:
            break
        try:
            conn.send((float(loss(x)), np.asarray(loss.jac(x))))
        except Exception as exc:  # noqa: BLE001 - re-raised in the parent
            conn.send(exc)
    conn.close()


class ShardedLoss:
    """motep's loss (and gradient) split over worker processes, one shard each.

    motep normalises each term by the number of configurations, so the total is the
    shard values weighted by shard size.  One process per core halves BFGS wall time on
    the 2-core machines autopot targets; with ``n_jobs=1`` it runs in-process.
    """

    MIN_SHARD = 16

    def __init__(self, images: Sequence[Atoms], data, setting, n_jobs: int | None = None):
        import multiprocessing as mp

        from motep.loss import LossFunction

        n = len(images)
        jobs = n_jobs if n_jobs is not None else min(os.cpu_count() or 1, 8)
        # one shard per MIN_SHARD configurations at least: below that the pipes and the
        # second process cost more CPU than they save wall time (12 configurations of 32
        # atoms: 17 s CPU sharded vs 14 s in-process, the same wall time)
        jobs = max(1, min(jobs, n // self.MIN_SHARD or 1))
        if mp.current_process().daemon:  # daemonic processes may not have children
            jobs = 1
        self.n_shards = jobs
        self.conns: list = []
        self.procs: list = []
        self.local = None
        if jobs == 1:
            self.local = LossFunction(list(images), data, setting, engine="cext")
            self.weights = [1.0]
            return
        ctx = mp.get_context("fork")
        order = np.argsort([-len(a) for a in images], kind="stable")
        shards = [[images[k] for k in order[s::jobs]] for s in range(jobs)]
        self.weights = [len(sh) / n for sh in shards]
        for sh in shards:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_shard_worker, args=(child, sh, data, setting), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        if self.local is not None:
            return float(self.local(x)), np.asarray(self.local.jac(x))
        for conn in self.conns:
            conn.send(x)
        total, grad = 0.0, np.zeros_like(x)
        for w, conn in zip(self.weights, self.conns, strict=True):
            out = conn.recv()
            if isinstance(out, Exception):
                raise out
            total += w * out[0]
            grad += w * out[1]
        return total, grad

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
                conn.close()
            except OSError:
                pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
        self.conns, self.procs = [], []

    def __enter__(self) -> ShardedLoss:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ConvergenceStop:
    """scipy ``minimize`` callback: stop once the loss fell by less than ``tol`` (relative)
    over the last :data:`CONV_WINDOW` iterations, MLIP-2's ``--bfgs-conv-tol`` rule; BFGS
    otherwise keeps creeping for hundreds of iterations that change no error figure."""

    def __init__(self, tol: float, window: int = CONV_WINDOW) -> None:
        self.tol, self.window = tol, window
        self.history: list[float] = []
        self.converged = False

    def __call__(self, intermediate_result) -> None:
        self.history.append(float(intermediate_result.fun))
        if self.tol <= 0 or len(self.history) <= self.window:
            return
        old, new = self.history[-1 - self.window], self.history[-1]
        if old > 0 and (old - new) / old < self.tol:
            self.converged = True
            raise StopIteration


class MotepBackend(MTPBackend):
    """motep for evaluation and training; our MLIP-2-compatible active set for grading."""

    name = "motep"

    def __init__(self, n_jobs: int | None = None, mode: str = "configuration") -> None:
        self.n_jobs = n_jobs
        self.mode = mode

    def train(
        self,
        pot: PathLike,
        training_set: Configs,
        out_pot: PathLike,
        *,
        atom_types: str | Mapping[str, int],
        workdir: PathLike | None = None,
        **train_args: Any,
    ) -> TrainResult:
        """LLS for the linear coefficients, then scipy BFGS on all of them until converged
        (``conv_tol``) or ``max_iter``; options, defaults and ranges from
        :data:`.train_options.TRAIN_OPTIONS`.  Writes ``out_pot`` and its active set."""
        from motep.loss import LossFunction, LossSetting
        from motep.optimizers import make_optimizer
        from scipy.optimize import minimize

        from .mtpfile import activeset_path, is_trained, write_mtp

        opt = resolve_train_args(train_args)
        types = parse_atom_types(atom_types)
        images = load_configs(training_set, types, "training_set")
        if not images:
            raise MTPError("training set is empty", file=_file_of(training_set))
        data = load_potential(pot, types, trained=False)
        check_species(images, types, int(data.species_count), file=_file_of(training_set), pot=pot)
        for k, a in enumerate(images):
            if a.calc is None or "energy" not in a.calc.results:
                raise MTPError(
                    f"configuration {k} has no energy", file=_file_of(training_set), field="Energy"
                )
        t0 = time.perf_counter()
        work = [a.copy() for a in images]
        for w, a in zip(work, images, strict=True):  # motep replaces .calc, keep ours intact
            from ase.calculators.singlepoint import SinglePointCalculator

            w.calc = SinglePointCalculator(
                w,
                **{
                    k: np.copy(v)
                    for k, v in a.calc.results.items()
                    if k in ("energy", "forces", "stress")
                },
            )
        max_iter, method = opt["max_iter"], opt["method"]
        rng = np.random.default_rng(opt["seed"])
        fresh = not is_trained(data)
        data.initialize(rng)
        setting = LossSetting(
            energy_weight=opt["energy_weight"],
            forces_weight=opt["force_weight"],
            stress_weight=opt["stress_weight"],
        )
        steps: list[dict] = []
        nit: int | None = None
        if opt["lls"] and fresh:
            loss = LossFunction(work, data, setting, engine="cext")
            step = {"method": "LLS"}
            make_optimizer("LLS")(loss, **step).optimize()
            steps.append(step)
            del loss
        if max_iter > 0:
            opts: dict[str, Any] = {"maxiter": int(max_iter)}
            if method.upper() == "L-BFGS-B":  # default tolerances stop after a few steps
                opts.update(ftol=1e-14, gtol=1e-10, maxfun=10 * int(max_iter))
            data.optimized = ["species_coeffs", "moment_coeffs", "radial_coeffs"]
            stop = ConvergenceStop(opt["conv_tol"], opt["conv_window"])
            with ShardedLoss(work, data, setting, n_jobs=self.n_jobs) as fun:
                res = minimize(
                    fun, data.parameters, jac=True, method=method, options=opts, callback=stop
                )
            data.parameters = res.x
            nit = int(res.nit)
            steps.append(
                {
                    "method": method,
                    "options": opts,
                    "nit": nit,
                    "nfev": int(res.nfev),
                    "loss": float(res.fun),
                    "converged": stop.converged,
                    "conv_tol": opt["conv_tol"],
                    "shards": fun.n_shards,
                    "loss_history": [float(f"{f:.6g}") for f in stop.history],
                }
            )
            log.info(
                "%s: %d iterations, loss %.6g%s",
                method,
                nit,
                float(res.fun),
                " (converged)" if stop.converged else "",
            )
        # after LLS-only runs ``optimized`` is the last step's subset: reset for grading
        data.optimized = ["species_coeffs", "moment_coeffs", "radial_coeffs"]
        out_pot = Path(out_pot)
        write_mtp(out_pot, data)
        predicted = self.calc_efs(out_pot, images, types)
        errors = compute_errors(images, predicted)
        als_path = None
        if opt["save_active_set"]:
            get_active_set(out_pot, images, types, mode=self.mode, n_jobs=self.n_jobs, save=True)
            als_path = activeset_path(out_pot)
        wall = time.perf_counter() - t0
        logpath = None
        if workdir is not None:
            import json

            Path(workdir).mkdir(parents=True, exist_ok=True)
            logpath = Path(workdir) / "train_errors.json"
            logpath.write_text(
                json.dumps(
                    {
                        "errors": errors,
                        "n_configs": len(images),
                        "wall_seconds": wall,
                        "steps": steps,
                    },
                    indent=1,
                )
            )
        return TrainResult(
            potential=out_pot,
            errors=errors,
            n_configs=len(images),
            wall_seconds=wall,
            active_set=als_path,
            workdir=Path(workdir) if workdir else None,
            log=logpath,
            iterations=nit,
        )

    def calc_efs(
        self, pot: PathLike, configs: Configs, atom_types: str | Mapping[str, int]
    ) -> list[Atoms]:
        """Energies, forces, stresses (motep ``cext`` engine) on copies of ``configs``."""
        from ase.calculators.singlepoint import SinglePointCalculator
        from motep.calculator import MTP

        types = parse_atom_types(atom_types)
        images = load_configs(configs, types, "configs")
        data = load_potential(pot, types)
        check_species(images, types, int(data.species_count), file=_file_of(configs), pot=pot)
        out = []
        for a in images:
            b = a.copy()
            b.calc = MTP(data, engine="cext", mode="run")
            res = {"energy": b.get_potential_energy(), "forces": b.get_forces()}
            if b.cell.rank == 3:
                res["stress"] = b.get_stress()
            b.calc = SinglePointCalculator(b, **res)
            out.append(b)
        return out

    def _prepare(self, pot, training_set, configs, atom_types, what):
        from .jacobian import MTPArrays

        types = parse_atom_types(atom_types)
        train = load_configs(training_set, types, "training_set")
        images = load_configs(configs, types, what)
        data = load_potential(pot, types)
        check_species(train, types, int(data.species_count), file=_file_of(training_set), pot=pot)
        check_species(images, types, int(data.species_count), file=_file_of(configs), pot=pot)
        arr = MTPArrays.from_mtp(data, data.species)
        als = get_active_set(pot, train, types, mode=self.mode, n_jobs=self.n_jobs)
        return types, train, images, arr, als

    def calc_grade(
        self,
        pot: PathLike,
        training_set: Configs,
        configs: Configs,
        atom_types: str | Mapping[str, int],
    ) -> np.ndarray:
        """Extrapolation grade of every configuration (as ``mlp calc-grade``)."""
        _, _, images, arr, als = self._prepare(pot, training_set, configs, atom_types, "configs")
        return als.grade(arr, images, n_jobs=self.n_jobs)

    def select_add(
        self,
        pot: PathLike,
        training_set: Configs,
        candidates: Configs,
        atom_types: str | Mapping[str, int],
        threshold: float = SELECT_THRESHOLD,
        limit: int | None = None,
        *,
        swap_threshold: float = SWAP_THRESHOLD,
    ) -> SelectResult:
        """``mlp select-add``: if any candidate grades above ``threshold``, swap candidate
        rows into the active set one at a time (each swap updates A^-1, so copies of an
        already-selected configuration drop to grade ~1), while max |c| > swap_threshold;
        ``limit`` caps the swaps (mlp's --selection-limit), hence the number selected."""
        if threshold <= 1.0:
            raise MTPError(f"threshold must be > 1, got {threshold}", field="threshold")
        if limit is not None and limit < 0:
            raise MTPError(f"limit must be >= 0, got {limit}", field="limit")
        _, _, images, arr, als = self._prepare(
            pot, training_set, candidates, atom_types, "candidates"
        )
        if not images:
            return SelectResult(indices=np.zeros(0, dtype=int), grades=np.zeros(0), selected=[])
        rows, owners = jacobian_rows(arr, images, als.mode, self.n_jobs)
        c = np.abs(rows @ als.maxvol.ainv).max(axis=1)
        grades = np.zeros(len(images))
        np.maximum.at(grades, owners, c)
        offset = 1 << 40
        mv = MaxVol(
            a=als.maxvol.a.copy(), ainv=als.maxvol.ainv.copy(), owner=als.maxvol.owner.copy()
        )
        if grades.max() > threshold:
            mv.maximize(rows, owners + offset, threshold=swap_threshold, swap_limit=limit)
        chosen = np.unique(mv.owner[mv.owner >= offset] - offset).astype(int)
        return SelectResult(indices=chosen, grades=grades, selected=[images[i] for i in chosen])


# ----------------------------------------------------------------------------------------
# MLIP-2 mlp
# ----------------------------------------------------------------------------------------
class MlpBackend(MTPBackend):
    """MLIP-2's ``mlp`` binary: arguments as a list (never a shell string), every call's
    output kept as ``<workdir>/mlp_<command>.log``."""

    name = "mlp"

    #: commands run under ``launcher``: MLIP-2 parallelises training over MPI ranks; its
    #: calc-efs/calc-grade/select-add are serial (under MPI each rank would write its own
    #: share of the output, ``out.cfg_<rank>``, or race on ``state.als``)
    LAUNCHED = ("train",)

    def __init__(self, binary: str | None = None, launcher: Sequence[str] | None = None) -> None:
        """``launcher`` prefixes ``mlp train``, e.g. ``["mpirun", "-n", "4"]`` or ``["srun"]``
        (from the run space: ``mtp_backend: {name: mlp, binary: ..., launcher: [...]}``)."""
        self.binary = self.resolve(binary)
        if isinstance(launcher, str) or (
            launcher is not None and not all(isinstance(a, str | int) for a in launcher)
        ):
            raise MTPError(
                "launcher must be a list of arguments, not a shell string",
                field="mtp_backend.launcher",
            )
        self.launcher = [str(a) for a in launcher] if launcher else []

    @staticmethod
    def resolve(binary: str | None) -> str:
        name = binary or "mlp"
        found = shutil.which(name)
        if found is None and os.sep in name and os.path.isfile(name) and os.access(name, os.X_OK):
            found = os.path.abspath(name)
        if found is None:
            where = "on PATH" if binary is None else "(check mlp_binary in the configuration)"
            raise MTPError(
                f"MLIP-2 binary {name!r} not found {where}; install MLIP-2 or use "
                "the motep backend",
                field="mlp_binary",
            )
        return found

    def check_train_args(self, train_args: Mapping[str, Any]) -> dict[str, Any]:
        """mlp has no other optimiser and no other convergence window."""
        opt = resolve_train_args(train_args)
        if opt["conv_window"] != CONV_WINDOW:
            raise MTPError(
                f"mlp's convergence window is fixed at {CONV_WINDOW} iterations, "
                f"not {opt['conv_window']}",
                field="train_args.conv_window",
            )
        if opt["method"] != "BFGS":
            raise MTPError(
                f"mlp trains with BFGS only, not {opt['method']!r}", field="train_args.method"
            )
        return opt

    def command(self, cmd: str, *args: PathLike, **options: Any) -> list[str]:
        """``[launcher..., mlp, cmd, args..., --key=value...]``; ``True`` flags become
        ``--key``; the launcher only for :attr:`LAUNCHED` commands."""
        launcher = self.launcher if cmd in self.LAUNCHED else []
        argv = [*launcher, self.binary, cmd, *(str(a) for a in args)]
        for key, value in options.items():
            if value is None or value is False:
                continue
            flag = "--" + key.replace("_", "-")
            argv.append(flag if value is True else f"{flag}={value}")
        return argv

    def run(self, argv: list[str], workdir: Path) -> str:
        """Run ``argv`` in ``workdir`` (created by :meth:`_workdir`), output to a log."""
        workdir.mkdir(parents=True, exist_ok=True)
        cmd = argv[argv.index(self.binary) + 1]
        logfile = workdir / f"mlp_{cmd}.log"
        with open(logfile, "w", encoding="utf-8") as fh:
            proc = subprocess.run(
                argv,
                cwd=workdir,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        text = logfile.read_text(encoding="utf-8", errors="replace")
        failed = any(ln.strip().startswith(("ERROR:", "ERROR ")) for ln in text.splitlines())
        if proc.returncode != 0 or failed:
            last = [ln for ln in text.splitlines() if ln.strip()][-1:] or ["(no output)"]
            raise MlpFailed(
                f"mlp {cmd} failed (exit {proc.returncode}): {last[0][:200]}", file=str(logfile)
            )
        return text

    @staticmethod
    def _workdir(workdir: PathLike | None, what: str) -> Path:
        """An existing, absolute work directory: every input is written into it before
        ``mlp`` runs there (select-add and calc-grade also write ``state.als`` and
        ``selected.cfg`` into their cwd), so it is created here, once, for every call."""
        if workdir is None:
            return Path(tempfile.mkdtemp(prefix=f"autopot-mlp-{what}-"))
        path = Path(workdir).resolve()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MTPError(
                f"cannot create the mlp work directory: {exc.strerror}", file=str(path)
            ) from None
        return path

    @contextmanager
    def _scratch(self, workdir: PathLike | None, what: str) -> Iterator[Path]:
        """:meth:`_workdir`; a temporary one (``workdir=None``) is removed after a success
        (after a failure it stays: the error names its log)."""
        wd = self._workdir(workdir, what)
        yield wd
        if workdir is None:
            shutil.rmtree(wd, ignore_errors=True)

    @staticmethod
    def _as_cfg(
        configs: Configs, types: Mapping[str, int], path: Path, what: str
    ) -> tuple[Path, list[Atoms]]:
        from .cfg import write_cfg

        images = load_configs(configs, types, what)
        write_cfg(path, images, types)
        return path, images

    @staticmethod
    def _output(path: Path) -> Path:
        if path.exists():
            return path
        alt = path.with_name(path.name + "_0")  # MPI builds append the rank
        if alt.exists():
            return alt
        raise MTPError("mlp wrote no output file", file=str(path))

    def train(
        self,
        pot: PathLike,
        training_set: Configs,
        out_pot: PathLike,
        *,
        atom_types: str | Mapping[str, int],
        workdir: PathLike | None = None,
        **train_args: Any,
    ) -> TrainResult:
        """``mlp train`` with the options of :data:`.train_options.TRAIN_OPTIONS` mapped to
        mlp's flags (``seed`` has no mlp counterpart; ``method`` must be BFGS)."""
        opt = self.check_train_args(train_args)
        types = parse_atom_types(atom_types)
        wd = self._workdir(workdir, "train")
        ts, images = self._as_cfg(training_set, types, wd / "train.cfg", "training_set")
        out_pot = Path(out_pot).resolve()
        t0 = time.perf_counter()
        argv = self.command(
            "train",
            Path(pot).resolve(),
            ts,
            trained_pot_name=out_pot,
            max_iter=opt["max_iter"],
            bfgs_conv_tol=opt["conv_tol"],
            energy_weight=opt["energy_weight"],
            force_weight=opt["force_weight"],
            stress_weight=opt["stress_weight"],
            skip_preinit=not opt["lls"],
        )
        text = self.run(argv, wd)
        errors = parse_mlp_errors(text)
        start = text.rfind("BFGS iterations count set to")  # after the pre-training
        iters = [
            ln
            for ln in text[max(start, 0) :].splitlines()
            if start >= 0 and ln.startswith("BFGS iter ")
        ]
        als_path = None
        if opt["save_active_set"]:
            from .mtpfile import activeset_path

            get_active_set(out_pot, images, types, save=True)
            als_path = activeset_path(out_pot)
        return TrainResult(
            potential=out_pot,
            errors=errors,
            n_configs=len(images),
            wall_seconds=time.perf_counter() - t0,
            active_set=als_path,
            workdir=wd,
            log=wd / "mlp_train.log",
            iterations=len(iters) if iters else None,
        )

    def calc_efs(
        self,
        pot: PathLike,
        configs: Configs,
        atom_types: str | Mapping[str, int],
        *,
        workdir: PathLike | None = None,
    ) -> list[Atoms]:
        from .cfg import read_cfg

        types = parse_atom_types(atom_types)
        with self._scratch(workdir, "efs") as wd:
            inp, _ = self._as_cfg(configs, types, wd / "in.cfg", "configs")
            self.run(self.command("calc-efs", Path(pot).resolve(), inp, wd / "out.cfg"), wd)
            return read_cfg(self._output(wd / "out.cfg"), types)

    def calc_grade(
        self,
        pot: PathLike,
        training_set: Configs,
        configs: Configs,
        atom_types: str | Mapping[str, int],
        *,
        workdir: PathLike | None = None,
    ) -> np.ndarray:
        from .cfg import read_cfg

        types = parse_atom_types(atom_types)
        with self._scratch(workdir, "grade") as wd:
            ts, _ = self._as_cfg(training_set, types, wd / "train.cfg", "training_set")
            inp, _ = self._as_cfg(configs, types, wd / "in.cfg", "configs")
            self.run(
                self.command(
                    "calc-grade",
                    Path(pot).resolve(),
                    ts,
                    inp,
                    wd / "out.cfg",
                    als_filename=wd / "state.als",
                ),
                wd,
            )
            out = read_cfg(self._output(wd / "out.cfg"), types)
            return grades_from_cfg(out, self._output(wd / "out.cfg"))

    def select_add(
        self,
        pot: PathLike,
        training_set: Configs,
        candidates: Configs,
        atom_types: str | Mapping[str, int],
        threshold: float = SELECT_THRESHOLD,
        limit: int | None = None,
        *,
        workdir: PathLike | None = None,
    ) -> SelectResult:
        from .cfg import read_cfg, write_cfg

        types = parse_atom_types(atom_types)
        images = load_configs(candidates, types, "candidates")
        tagged = []
        for k, a in enumerate(images):
            b = a.copy()
            b.calc = a.calc
            b.info = {**a.info, "autopot_index": k}
            tagged.append(b)
        with self._scratch(workdir, "select") as wd:
            grades = self.calc_grade(pot, training_set, tagged, types, workdir=wd / "grade")
            ts, _ = self._as_cfg(training_set, types, wd / "train.cfg", "training_set")
            write_cfg(wd / "candidates.cfg", tagged, types)
            argv = self.command(
                "select-add",
                Path(pot).resolve(),
                ts,
                wd / "candidates.cfg",
                wd / "diff.cfg",
                select_threshold=threshold,
                selection_limit=limit if limit else None,
                als_filename=wd / "state.als",
                selected_filename=wd / "selected.cfg",
            )
            self.run(argv, wd)
            diff = read_cfg(self._output(wd / "diff.cfg"), types)
            idx = indices_from_cfg(diff, wd / "diff.cfg")
        return SelectResult(indices=idx, grades=grades, selected=[images[i] for i in idx])


def grades_from_cfg(images: Sequence[Atoms], path: PathLike) -> np.ndarray:
    """``MV_grade`` features of an ``mlp calc-grade`` output, in order."""
    out = np.empty(len(images))
    for k, a in enumerate(images):
        if "MV_grade" not in a.info:
            raise MTPError(
                f"configuration {k} has no MV_grade feature", file=str(path), field="MV_grade"
            )
        out[k] = float(a.info["MV_grade"])
    return out


def indices_from_cfg(images: Sequence[Atoms], path: PathLike) -> np.ndarray:
    """Our ``autopot_index`` features of an ``mlp select-add`` diff file, sorted."""
    idx = []
    for k, a in enumerate(images):
        if "autopot_index" not in a.info:
            raise MTPError(
                f"configuration {k} lost its autopot_index feature",
                file=str(path),
                field="autopot_index",
            )
        idx.append(int(a.info["autopot_index"]))
    return np.array(sorted(set(idx)), dtype=int)


def get_backend(name: str = "motep", mlp_binary: str | None = None, **options: Any) -> MTPBackend:
    """``"motep"`` (default) or ``"mlp"`` (binary from ``mlp_binary`` or PATH)."""
    if name == "motep":
        return MotepBackend(**options)
    if name == "mlp":
        unknown = sorted(set(options) - {"launcher"})
        if unknown:
            raise MTPError(f"unknown mlp backend option {unknown[0]!r}", field="backend")
        return MlpBackend(mlp_binary, **options)
    raise MTPError(f"unknown MTP backend {name!r}; use 'motep' or 'mlp'", field="backend")


def backend_from_spec(spec: Mapping[str, Any] | None) -> MTPBackend:
    """The backend a run space's ``mtp_backend`` names: ``{name: motep}`` (the default) or
    ``{name: mlp, binary: /path/to/mlp}``; other keys are backend options."""
    # unset keys of the bd.yaml schema arrive as None: the backend's own default applies
    options = {k: v for k, v in dict(spec or {"name": "motep"}).items() if v is not None}
    name = options.pop("name", "motep")
    binary = options.pop("binary", None)
    return get_backend(name, mlp_binary=binary, **options)
