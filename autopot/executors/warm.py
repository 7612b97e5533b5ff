"""Warm start: a fork server that imports Python's scientific stack once per executor.

Why: a stock task process (``run.sh`` = ``exec python3 doIt.py``) spends most of a short
run importing numpy, ASE, ZODB/ZEO and autopot before it does ~50 ms of work; at paper
scale (thousands of sp_calc runs) that start-up is most of the wall time. The fork server
(a "zygote") is started once, imports those modules, opens no database connection and no
thread, and forks one process tree per run.

What a warm run looks like (the same as the cold ``TASK_COMMAND``, seen from outside):

* a *wrapper* process, forked from the zygote: new session (so a cancel kills the whole
  process group and an orchestrator crash kills nothing), ``cwd`` the run directory,
  stdin ``/dev/null``, stdout/stderr appended to ``stdout.log``/``stderr.log``, writes
  ``.autopot_pid`` (its pid: what the executor reports, cancels and adopts), then forks
* the *task* process, which takes the run's environment exactly (plus ``PWD``, as the
  shell exports it), ``sys.argv = ["doIt.py"]``, ``sys.path[0]`` = the run directory,
  runs ``doIt.py`` as ``__main__`` and exits with Python's own exit status;
* the wrapper waits for it, writes ``.autopot_exit`` as the shell wrapper does (the
  status, or 128+N after a death by signal N) and exits with that status.

The wrapper does not depend on the zygote: if the zygote dies, running tasks go on and
leave their exit file, which the executor reads when it sees the wrapper end (pidfd).

Which runs go warm (:func:`cold_reason`): stock ``run.sh``, ``doIt.py`` present, the
interpreter the run would start is the zygote's, and the variables read at interpreter
start-up or module import (``PYTHON*``, ``LD_*``, BLAS threads, locale) are the zygote's.
Everything else (a ``run.sh`` with ``module load``, a VASP wrapper) goes cold.

BLAS: the zygote imports numpy with ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/
``MKL_NUM_THREADS`` as set, or 1 when unset (a thread pool must not exist at fork, and the
local executor already runs one task per core). The task's own environment is not
changed: programs it starts see the variables as a cold task would.

Protocol (zygote = ``python -m autopot.executors.warm FD PRELOAD_JSON``): requests are
JSON lines on its stdin (``{"id", "dir", "env"}``); reports are JSON lines on pipe ``FD``,
each one ``write`` shorter than ``PIPE_BUF`` (atomic, whichever process writes it):
``ready`` from the zygote, ``start`` from a wrapper once its pid file is written, ``exit``
from the zygote when it reaps a wrapper. A wrapper holds the pipe's write end until it
has sent ``start``, so end-of-file on the pipe proves that no request still in flight
will ever start: those are relaunched, never duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from autopot.executors.base import EXIT_FILE, PID_FILE, STDERR, STDOUT

log = logging.getLogger("autopot.executors.warm")

#: The one line of a stock ``run.sh`` (comments and blank lines aside).
STOCK_COMMAND = 'exec "${AUTOPOT_PYTHON:-python3}" doIt.py'
SCRIPT = "doIt.py"

#: Imported once by the zygote: what the stock tasks import (missing ones are skipped).
DEFAULT_PRELOAD: tuple[str, ...] = (
    "numpy",
    "scipy.linalg",
    "scipy.optimize",
    "ase",
    "ase.io",
    "ase.build",
    "ase.calculators.emt",
    "ase.calculators.singlepoint",
    "ase.optimize",
    "ase.md",
    "ZODB",
    "ZEO.ClientStorage",
    "transaction",
    "BTrees.OOBTree",
    "autopot.task",
    "autopot.store.database",
    "autopot.store.workflow_records",
    "autopot.mtp.cfg",
    "autopot.mtp.backend",
    "autopot.mtp.calculator",
    # what those import lazily, once per task otherwise: motep and its neighbour lists
    # (md_select, select, train: 25 ms a task), ASE's EAM with scipy.interpolate (an EAM
    # reference's sp_calc: 35 ms a task, more than a 16-atom single point)
    "motep.calculator",
    "motep.loss",
    "motep.optimizers",
    "motep.potentials.mtp.cext.engine",
    "vesin",
    "ase.calculators.eam",
    "autopot.reference",
    "autopot.tasklib.common",
    "autopot.tasklib.sp_calc",
    "autopot.tasklib.select",
    "autopot.tasklib.md_select",
    "autopot.tasklib.train",
)

#: Read when the interpreter starts or a module is imported: a run whose environment
#: differs from the zygote's in any of these goes cold.
_STARTUP_VARS = (
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
)
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# ====================================================================== which runs go warm
def stock_run_sh(run_dir: Path) -> bool:
    """``run.sh`` only ``exec``s the interpreter on ``doIt.py`` (as tasks/*/run.sh do)."""
    try:
        text = (run_dir / "run.sh").read_text()
    except (OSError, UnicodeDecodeError):
        return False
    lines = [s.strip() for s in text.splitlines() if s.strip() and not s.lstrip().startswith("#")]
    return lines == [STOCK_COMMAND] and (run_dir / SCRIPT).is_file()


def same_interpreter(wanted: str | None, path: str | None, python: str = sys.executable) -> bool:
    """The interpreter ``run.sh`` would exec (``$AUTOPOT_PYTHON`` or ``python3`` on PATH)
    is ``python``: the same file, or a link beside it (``python`` vs ``python3`` of one
    virtual environment). A link elsewhere (a venv's python → the base one) is not: its
    ``sys.path`` differs."""
    command = wanted or "python3"
    found = command if "/" in command else shutil.which(command, path=path)
    if not found:
        return False
    a, b = os.path.abspath(found), os.path.abspath(python)
    if a == b:
        return True
    return os.path.dirname(a) == os.path.dirname(b) and os.path.realpath(a) == os.path.realpath(b)


def startup_env(env: Mapping[str, str]) -> dict[str, str]:
    """The part of an environment that shapes an interpreter before ``doIt.py`` runs."""
    return {k: v for k, v in env.items() if k.startswith("PYTHON") or k in _STARTUP_VARS}


def cold_reason(
    run_dir: Path, env: Mapping[str, str], zygote_env: Mapping[str, str], python: str
) -> str:
    """Why this run cannot be forked from the zygote ("" if it can)."""
    if not stock_run_sh(run_dir):
        return "run.sh is not the stock one (or doIt.py is missing)"
    if not same_interpreter(env.get("AUTOPOT_PYTHON"), env.get("PATH"), python):
        return f"AUTOPOT_PYTHON={env.get('AUTOPOT_PYTHON', '')!r} is not {python}"
    if startup_env(env) != startup_env(zygote_env):
        return "interpreter start-up variables (PYTHON*, LD_*, BLAS, locale) differ"
    return ""


# ====================================================================== zygote side
def _send(fd: int, message: dict[str, Any]) -> None:
    """One atomic write of one JSON line (shorter than PIPE_BUF by construction)."""
    os.write(fd, (json.dumps(message, separators=(",", ":")) + "\n").encode())


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def preload(modules: list[str]) -> list[str]:
    """Import ``modules`` (with BLAS pools at one thread unless set); the failures."""
    import importlib

    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a missing optional module only costs speed
            failed.append(f"{name}: {type(exc).__name__}: {exc}"[:200])
    return failed


def zygote_main(report_fd: int, modules: list[str]) -> None:
    """The fork server's loop: preload, say ready, fork a wrapper per request, reap them."""
    import gc
    import selectors

    t0 = time.perf_counter()
    failed = preload(modules)
    threads = _threads()
    gc.collect()
    gc.freeze()  # preloaded objects stay out of the children's collections: pages stay shared
    _send(
        report_fd,
        {
            "ready": threads == 1,
            "threads": threads,
            "seconds": round(time.perf_counter() - t0, 3),
            "modules": len(sys.modules),
            "failed": failed[:5],
        },
    )
    if threads != 1:
        return  # a fork would copy a thread pool's locks, not its threads: refuse
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ, "request")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    with contextlib.suppress(BrokenPipeError):  # the executor is gone: so are we
        _serve(report_fd, selector, wake_r, wake_w)


def _serve(report_fd: int, selector: Any, wake_r: int, wake_w: int) -> None:
    children: dict[int, int] = {}  # wrapper pid -> request id
    buffer = b""
    while True:
        for key, _ in selector.select():
            if key.data == "child":
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 512):
                        pass
                _reap(children, report_fd)
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                return  # the executor closed us (or died): wrappers go on by themselves
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as exc:  # out of processes or memory: this run goes cold
                    _send(report_fd, {"failed": request["id"], "error": str(exc)[:300]})
                    continue
                if pid == 0:
                    _wrapper(request, report_fd, (wake_r, wake_w, selector.fileno()))
                children[pid] = int(request["id"])
        _reap(children, report_fd)


def _reap(children: dict[int, int], report_fd: int) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        ident = children.pop(pid, None)
        if ident is not None:
            _send(report_fd, {"exit": ident, "pid": pid, "status": status})


def _wrapper(
    request: dict[str, Any],
    report_fd: int | None,
    close: tuple[int, ...],
    new_session: bool = True,
) -> NoReturn:
    """The forked wrapper: the warm twin of ``TASK_COMMAND``'s ``/bin/sh -c``.

    ``new_session``: as the local executor starts tasks (a cancel kills the group, a
    Ctrl-C of the orchestrator does not); not inside a SLURM job, whose signals
    (scancel, time limit) must reach every process of the job step."""
    code = 70
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as a shell: die, do not raise
        for fd in close:
            os.close(fd)
        if new_session:
            os.setsid()
        run_dir = str(request["dir"])
        os.chdir(run_dir)
        _redirect(run_dir)
        with open(PID_FILE, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        if report_fd is not None:
            with contextlib.suppress(OSError):  # an orchestrator gone meanwhile adopts us later
                _send(report_fd, {"start": request["id"], "pid": os.getpid()})
            os.close(report_fd)  # from here on the executor learns nothing new from us
        child = os.fork()
        if child == 0:
            _task(run_dir, dict(request["env"]))
        _, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        if code < 0:  # died of signal N: the shell's 128+N, and its one line about it
            _say_signal(-code, os.WCOREDUMP(status))
            code = 128 - code
        with open(EXIT_FILE, "w") as fh:
            fh.write(f"{code}\n")
    except BaseException:  # noqa: BLE001 - a wrapper never returns into the zygote's loop
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
    os._exit(code)


def _say_signal(signum: int, core: bool) -> None:
    """What ``/bin/sh`` (dash) writes to stderr when the command it waits for is killed:
    ``Killed``, ``Terminated (core dumped)``, nothing for SIGINT and SIGPIPE."""
    if signum in (signal.SIGINT, signal.SIGPIPE):
        return
    text = signal.strsignal(signum) or f"Unknown signal {signum}"
    os.write(2, (text + (" (core dumped)" if core else "") + "\n").encode())


def _redirect(run_dir: str) -> None:
    """stdin from /dev/null, stdout/stderr appended to the run's logs (fds 0, 1, 2)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(STDOUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    err = os.open(STDERR, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)


def _task(run_dir: str, env: dict[str, str]) -> NoReturn:
    """The task process: ``python3 doIt.py`` in the run directory, minus the imports."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        coerced = os.environ.get("LC_CTYPE")
        if coerced and "LC_CTYPE" not in env:
            # the zygote's interpreter set it (PEP 538 locale coercion; the run's locale
            # variables equal the zygote's or it would not be here): a cold one would too
            env["LC_CTYPE"] = coerced
        os.environ.clear()
        os.environ.update(env)
        os.environ["PWD"] = run_dir  # the shell exports the directory it runs in
        script = os.path.join(run_dir, SCRIPT)
        sys.argv = [SCRIPT]
        sys.path[0] = run_dir  # `python3 doIt.py` puts the script's directory first
        numpy = sys.modules.get("numpy")
        if numpy is not None:  # the legacy global generator was seeded once, in the zygote
            numpy.random.seed()
        code = run_main(script)
    except BaseException:  # noqa: BLE001 - set-up failed: say why, in stderr.log
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
    os._exit(code)


def run_main(script: str) -> int:
    """Run ``script`` as ``__main__`` and finish as the interpreter would; the status."""
    import atexit
    import gc
    import threading

    interrupted = False
    try:
        _exec_main(script)
        code = 0
    except SystemExit as exc:
        code = _exit_status(exc)
    except BaseException as exc:  # noqa: BLE001 - printed as the interpreter prints it
        interrupted = isinstance(exc, KeyboardInterrupt)
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next  # start the traceback at doIt.py, as `python3 doIt.py` does
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        code = 1
        del exc, tb
    with contextlib.suppress(Exception):
        threading._shutdown()  # type: ignore[attr-defined]  # non-daemon threads, as at exit
    atexit._run_exitfuncs()
    main = sys.modules.get("__main__")
    if main is not None:  # module teardown: the script's unclosed files get flushed
        main.__dict__.clear()
    del main
    gc.collect()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if interrupted:  # Python reports an uncaught KeyboardInterrupt as a death by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return code


def _exec_main(script: str) -> None:
    """Execute ``script`` as the interpreter runs a script named on its command line:
    a fresh ``__main__`` module (absolute ``__file__``, no ``__spec__``), ``sys.argv``
    untouched (runpy would put the absolute path into ``sys.argv[0]``)."""
    import builtins
    import types
    from importlib.machinery import SourceFileLoader

    module = types.ModuleType("__main__")
    module.__file__ = script
    module.__cached__ = None  # type: ignore[attr-defined]
    module.__loader__ = SourceFileLoader("__main__", script)
    module.__spec__ = None
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    module.__annotations__ = {}
    sys.modules["__main__"] = module
    with open(script, "rb") as fh:
        code = compile(fh.read(), script, "exec", dont_inherit=True)
    exec(code, module.__dict__)


def _exit_status(exc: SystemExit) -> int:
    """``sys.exit(x)``'s status, as the interpreter computes it."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    with contextlib.suppress(Exception):
        print(exc.code, file=sys.stderr)
    return 1


# ====================================================================== executor side
class WarmProcess:
    """A warm run's wrapper as the local executor sees it: ``pid``, ``returncode``, ``wait``.

    ``returncode`` follows asyncio's convention (-N: killed by signal N); None after
    ``wait`` means the exit status is unknown (zygote and wrapper both gone, no exit file).
    """

    def __init__(self, pid: int, run_dir: Path):
        self.pid = pid
        self.run_dir = run_dir
        self.returncode: int | None = None
        self.ended = asyncio.get_running_loop().create_future()

    def finish(self, code: int | None) -> None:
        if not self.ended.done():
            self.returncode = code
            self.ended.set_result(code)

    async def wait(self) -> int | None:
        return await asyncio.shield(self.ended)


@dataclass
class WarmStats:
    started: int = 0  # zygotes started
    forked: int = 0  # runs started warm
    relaunched: int = 0  # requests a dying zygote never started (the executor ran them cold)
    orphaned: int = 0  # running warm tasks whose zygote died (watched by pidfd)
    ready_s: list[float] = field(default_factory=list)


class _Zygote:
    """One zygote process and the requests it owes an answer."""

    def __init__(self, proc: asyncio.subprocess.Process, env: dict[str, str]):
        self.proc = proc
        self.env = env
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[bool] = loop.create_future()
        self.pending: dict[int, tuple[Path, asyncio.Future[WarmProcess | None]]] = {}
        self.running: dict[int, WarmProcess] = {}
        self.reader: asyncio.Task[None] | None = None
        self.gone = False  # its report pipe is closed: it will never answer again


class ForkServer:
    """The executor's side of one zygote at a time: started on first use, restarted
    (at most ``max_restarts`` times) if it dies, given up for the cold path otherwise."""

    def __init__(
        self,
        modules: list[str],
        *,
        python: str = sys.executable,
        startup_timeout: float = 120.0,
        fork_timeout: float = 60.0,
        max_restarts: int = 3,
    ):
        self.modules = modules
        self.python = python
        self.startup_timeout = startup_timeout
        self.fork_timeout = fork_timeout
        self.max_restarts = max_restarts
        self.disabled = ""  # why warm start is off for good ("" while it is on)
        self.stats = WarmStats()
        self._zygote: _Zygote | None = None
        self._lock: asyncio.Lock | None = None
        self._seq = 0
        self._closing = False

    @property
    def pid(self) -> int | None:
        """The zygote's pid while one runs."""
        z = self._zygote
        return z.proc.pid if z is not None and not z.gone and z.proc.returncode is None else None

    def cold_reason(self, run_dir: Path, env: Mapping[str, str]) -> str:
        """Why a run goes cold ("" if it can be forked)."""
        if self.disabled:
            return self.disabled
        z = self._zygote
        return cold_reason(run_dir, env, z.env if z is not None else dict(os.environ), self.python)

    async def launch(self, run_dir: Path, env: Mapping[str, str]) -> WarmProcess | None:
        """Fork a warm run; None when it must go cold (zygote unusable, or it died before
        this run started: then it provably never will)."""
        z = await self._alive()
        if z is None:
            return None
        assert z.proc.stdin is not None
        run_dir = Path(os.path.abspath(run_dir))  # the zygote runs in /
        self._seq += 1
        ident = self._seq
        started: asyncio.Future[WarmProcess | None] = asyncio.get_running_loop().create_future()
        z.pending[ident] = (run_dir, started)
        line = json.dumps({"id": ident, "dir": str(run_dir), "env": dict(env)}) + "\n"
        try:
            z.proc.stdin.write(line.encode())
            await z.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died: the end of its report pipe settles this request
        try:
            return await asyncio.wait_for(asyncio.shield(started), self.fork_timeout)
        except TimeoutError:
            log.warning(
                "warm-start server did not fork within %.0f s; restarting it", self.fork_timeout
            )
            with contextlib.suppress(ProcessLookupError):
                z.proc.kill()  # the pipe's end then tells whether this run started
            return await started

    async def _alive(self) -> _Zygote | None:
        if self.disabled:
            return None
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            z = self._zygote
            if z is None or z.gone:
                if self.stats.started > self.max_restarts:
                    self._disable(f"the warm-start server died {self.stats.started} times")
                    return None
                z = self._zygote = await self._start()
                if z is None:
                    return None
            try:
                ok = await asyncio.wait_for(asyncio.shield(z.ready), self.startup_timeout)
            except TimeoutError:
                self._disable(
                    f"the warm-start server was not ready in {self.startup_timeout:.0f} s"
                )
                with contextlib.suppress(ProcessLookupError):
                    z.proc.kill()
                return None
            return z if ok and not self.disabled and not z.gone else None

    def _disable(self, reason: str) -> None:
        if not self.disabled:
            self.disabled = reason
            log.warning("%s: local runs start cold from now on", reason)

    async def _start(self) -> _Zygote | None:
        loop = asyncio.get_running_loop()
        env = dict(os.environ)
        spawn_env = {**env, **{k: env.get(k) or "1" for k in _BLAS_THREADS}}
        read_fd, write_fd = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "autopot.executors.warm",
                str(write_fd),
                json.dumps(self.modules),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                cwd="/",  # nothing of the orchestrator's directory on the zygote's sys.path
                env=spawn_env,
                pass_fds=(write_fd,),
                start_new_session=True,  # a Ctrl-C meant for the orchestrator spares it
            )
        except OSError as exc:
            os.close(read_fd)
            self._disable(f"cannot start the warm-start server: {exc}")
            return None
        finally:
            os.close(write_fd)  # its only holders now: the zygote and its wrappers
        self.stats.started += 1
        z = _Zygote(proc, env)
        reader = asyncio.StreamReader(limit=1 << 20)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        z.reader = loop.create_task(self._read(z, reader, transport), name="warm-start reports")
        return z

    async def _read(
        self, z: _Zygote, reader: asyncio.StreamReader, transport: asyncio.BaseTransport
    ) -> None:
        try:
            while line := await reader.readline():
                self._handle(z, json.loads(line))
        finally:
            transport.close()
            await self._ended(z)

    def _handle(self, z: _Zygote, message: dict[str, Any]) -> None:
        if "ready" in message:
            if message["failed"]:
                log.debug("warm start: not preloaded: %s", "; ".join(message["failed"]))
            if message["ready"]:
                self.stats.ready_s.append(float(message["seconds"]))
                log.info(
                    "warm-start server ready in %.1f s (%d modules imported once)",
                    message["seconds"],
                    message["modules"],
                )
            else:
                self._disable(
                    f"the warm-start server has {message['threads']} threads after its "
                    "imports (forking it is unsafe)"
                )
            if not z.ready.done():
                z.ready.set_result(bool(message["ready"]))
        elif "start" in message:
            ident = int(message["start"])
            entry = z.pending.pop(ident, None)
            if entry is not None:
                process = WarmProcess(int(message["pid"]), entry[0])
                z.running[ident] = process
                self.stats.forked += 1
                entry[1].set_result(process)
        elif "failed" in message:
            log.warning("warm start: cannot fork (%s); the run starts cold", message["error"])
            entry = z.pending.pop(int(message["failed"]), None)
            if entry is not None:
                entry[1].set_result(None)
        elif "exit" in message:
            ident = int(message["exit"])
            ended = z.running.pop(ident, None)
            if ended is not None:
                ended.finish(os.waitstatus_to_exitcode(int(message["status"])))
            else:  # the wrapper ended before it could start the run (its directory vanished)
                entry = z.pending.pop(ident, None)
                if entry is not None:
                    entry[1].set_result(None)

    async def _ended(self, z: _Zygote) -> None:
        """The report pipe is closed: the zygote is gone and no wrapper will send again."""
        z.gone = True
        if not z.ready.done():
            z.ready.set_result(False)
        pending, z.pending = z.pending, {}
        for _, started in pending.values():
            self.stats.relaunched += 1
            if not started.done():
                started.set_result(None)
        running, z.running = z.running, {}
        if self._closing:  # the executor stops: its running tasks go on unwatched, as cold ones
            running = {}
        if running:
            log.warning(
                "warm-start server (pid %d) ended; watching its %d running task(s) directly",
                z.proc.pid,
                len(running),
            )
        for process in running.values():
            self.stats.orphaned += 1
            _watch_orphan(process)
        with contextlib.suppress(ProcessLookupError):
            z.proc.kill()
        with contextlib.suppress(Exception):
            await z.proc.wait()

    async def close(self) -> None:
        """Stop the zygote (running tasks go on: they do not depend on it)."""
        self._closing = True
        z, self._zygote = self._zygote, None
        if z is None:
            return
        if z.proc.stdin is not None:
            z.proc.stdin.close()
        try:
            await asyncio.wait_for(z.proc.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                z.proc.kill()
            await z.proc.wait()
        if z.reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(z.reader), 5.0)


def _watch_orphan(process: WarmProcess) -> None:
    """Learn how a wrapper whose zygote died ends: a pidfd, then its exit file."""
    from autopot.executors.base import read_exit_file

    loop = asyncio.get_running_loop()
    try:
        alive = Path(f"/proc/{process.pid}/cwd").resolve() == process.run_dir.resolve()
        fd = os.pidfd_open(process.pid) if alive else -1
    except OSError:
        fd = -1
    if fd < 0:
        process.finish(read_exit_file(process.run_dir))
        return

    def exited() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        process.finish(read_exit_file(process.run_dir))

    loop.add_reader(fd, exited)


def group_main(run_list: Path, first: int, count: int) -> int:
    """A packed SLURM array task (``group_size``): lines ``first .. first+count-1`` of the
    run list, one after the other, in one interpreter that imported the scientific stack
    once. Each run is forked exactly as the local executor forks it (minus the new
    session: SLURM's signals must reach it) or, if it cannot go warm, run cold with
    ``TASK_COMMAND``; each is judged by its own exit file. Exit 0, as the shell loop."""
    import subprocess

    from autopot.executors.base import TASK_COMMAND

    given = dict(os.environ)  # the job's environment: what each task gets
    for key in _BLAS_THREADS:
        os.environ[key] = given.get(key) or "1"
    dirs = run_list.read_text().splitlines()[first - 1 : first - 1 + count]
    preload(list(DEFAULT_PRELOAD))
    threads = _threads()
    forked = cold = 0
    for run_dir in dirs:
        if not run_dir or not os.path.isdir(run_dir):
            print(f"autopot: run directory '{run_dir}' not found", file=sys.stderr, flush=True)
            continue
        for name in (EXIT_FILE, PID_FILE):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(run_dir, name))
        env = {**given, "AUTOPOT_RUN_DIR": run_dir, "PWD": run_dir}
        if threads == 1 and not cold_reason(Path(run_dir), env, given, sys.executable):
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _wrapper({"dir": run_dir, "env": env}, None, (), new_session=False)
            os.waitpid(pid, 0)  # the run's own status is in its exit file
            forked += 1
            continue
        with (
            open(os.path.join(run_dir, STDOUT), "ab") as out,
            open(os.path.join(run_dir, STDERR), "ab") as err,
        ):
            subprocess.run(
                TASK_COMMAND, cwd=run_dir, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        cold += 1
    print(
        f"autopot: group of {len(dirs)} run(s): {forked} forked from one interpreter, "
        f"{cold} started cold" + (f" ({threads} threads after imports)" if threads != 1 else ""),
        flush=True,
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point: the zygote (``python -m autopot.executors.warm FD PRELOAD``) or a
    packed SLURM array task (``... group RUN_LIST FIRST COUNT``)."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "group":
        sys.exit(group_main(Path(args[1]), int(args[2]), int(args[3])))
    zygote_main(int(args[0]), list(json.loads(args[1])))


if __name__ == "__main__":
    main()
