"""SLURM executor: batch scripts, job arrays, one ``squeue`` per poll, scancel, retries.

How a run becomes a SLURM job
    ``submit(specs)`` validates every run's ``slurm_options`` first (an unknown key or a
    bad value is an :class:`ExecutorError` naming the task and the option, before
    anything is submitted), then groups runs with identical options and environment.
    A group of one is a plain job whose script (``slurm_job.sh``) lies in its run
    directory; larger groups are job arrays of at most ``max_array_size`` tasks (one
    ``sbatch`` each), whose script and ``runs.list`` (line i = run directory of array
    task i) lie in ``<runs>/.slurm/<token>/``. The script body is a constant (see
    :mod:`autopot.executors.slurm_script`): it ``cd``s into the run directory and runs
    the same :data:`TASK_COMMAND` as the local executor, so ``stdout.log``,
    ``stderr.log`` and ``.autopot_exit`` look the same whichever executor ran the task.
    Every external command is an argument list (``asyncio.create_subprocess_exec``).

How states come back
    One poller coroutine runs ``squeue -t all -u <user>`` once per poll for every job
    (array tasks included), starting at ``poll_interval`` and backing off by ``backoff``
    up to ``max_poll_interval`` while nothing changes (the pace is held while jobs keep
    changing); a submission or cancel resets it.
    A job that left squeue is looked up with ``scontrol show job``, then ``sacct``
    (slurmdbd) or ``sacct -c`` (jobcomp/filetxt), and last the run's ``.autopot_exit``.
    RUNNING is reported once; terminal SLURM states map to outcomes with the cause
    (COMPLETED → FINISHED; FAILED/OUT_OF_MEMORY/... → FAILED with the exit code;
    CANCELLED → CANCELLED, saying whether autopot cancelled it; TIMEOUT, NODE_FAIL,
    PREEMPTED, BOOT_FAIL → FAILED with ``retry=True`` so the engine resubmits within the
    task manager's ``retries`` budget, optionally capped by this executor's ``retries``).

Idempotent submission (the AiiDA #3183 pattern)
    Before ``sbatch`` the executor writes ``slurm_intent.json`` into each run directory
    with a fresh token, and the token goes into the job's ``--comment`` and
    ``--job-name``. If the orchestrator dies between sbatch and recording the job id,
    the next ``submit`` of that run (the engine resubmits runs that never started) finds
    the unfinished intent, looks the token up in squeue / sacct and adopts the job
    instead of submitting it again. An intent is closed once its job's end is reported.

How the task reaches the database (option ``db``, docs/slurm.md)
    ``none`` (default): not at all. The job's marker says ``db: none``; the task writes
    its outcome file into the run directory (shared filesystem) and the orchestrator
    ingests it when it sees the job end, so compute nodes need no route to the
    orchestrator's host. ``tls``: the orchestrator serves the database on
    ``db_host:db_port`` with mutual TLS (:mod:`autopot.store.tls_gateway`, certificates
    made per workflow) and the jobs get ``AUTOPOT_DB_ADDRESS`` and ``AUTOPOT_TLS_*``.
    ``tcp``: the same with a server of your own (``db_address`` and ``tls`` files).
    ``socket``: the workflow's Unix socket (jobs on the orchestrator's host only).

Sites' limits
    ``max_queued`` keeps at most that many of the workflow's jobs in the queue (the rest
    wait here and are queued as jobs end); ``group_size`` packs that many runs into one
    array task, run one after another, each judged by its own exit file. Such a packed
    task imports Python's scientific stack once and forks each run whose ``run.sh`` is
    the stock one (``warm``, on unless ``warm: false`` or ``AUTOPOT_WARM=0``; see
    :mod:`autopot.executors.warm`); single jobs and array tasks of one run start cold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import re
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autopot.errors import ExecutorError
from autopot.executors.base import (
    EXIT_FILE,
    PID_FILE,
    STDERR,
    Executor,
    Outcome,
    RunSpec,
    exit_cause,
    read_exit_file,
    refuse_unknown_options,
    tail,
)
from autopot.executors.intent import (
    close_intents,
    exit_after,
    read_intent,
    update_intent,
    write_intent,
)
from autopot.executors.slurm_script import (
    ARRAY_SCRIPT_NAME,
    GROUP_FILE,
    RUN_LIST,
    SCRIPT_NAME,
    batch_script,
    job_name,
    sbatch_lines,
)
from autopot.store.states import State

log = logging.getLogger("autopot.executors.slurm")

#: States in which a job may still run (or be requeued); anything else is final.
ACTIVE = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "RESV_DEL_HOLD",
    }
)
RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"})
#: Final states worth a resubmission: the task did not fail, its allocation did.
RETRYABLE = frozenset({"TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL"})
_CAUSES = {
    "TIMEOUT": "exceeded its time limit",
    "NODE_FAIL": "its node failed",
    "OUT_OF_MEMORY": "exceeded its memory limit",
    "PREEMPTED": "was preempted",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "reached its deadline",
    "REVOKED": "was revoked",
    "SPECIAL_EXIT": "ended in SPECIAL_EXIT",
}
_SQUEUE_FORMAT = "JobArrayID:|,JobID:|,State:|,exit_code:|,Reason:|,Comment:"
_TOKEN_RE = re.compile(r"autopot:([0-9a-f]{12,32})")


@dataclass
class _Job:
    label: str
    run_dir: Path
    job_id: str  # "123" or "123_7": what squeue's JobArrayID shows
    attempt: int = 1
    token: str = ""
    raw_id: str = ""  # the plain job id (array tasks have their own; sacct -c knows only it)
    state: str = "PENDING"
    running: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    grouped: bool = False  # shares its array task with other runs (group_size)


#: the slurm executor's options (motoko.yaml ``executor: {name: slurm, ...}``)
SLURM_OPTIONS = (
    "poll_interval",
    "max_poll_interval",
    "backoff",
    "max_array_size",
    "retries",
    "slurm_options",
    "sbatch",
    "squeue",
    "scontrol",
    "sacct",
    "scancel",
    "command_timeout",
    "db",
    "db_host",
    "db_port",
    "db_address",
    "tls",
    "max_queued",
    "group_size",
    "warm",
)


@dataclass
class SlurmStats:
    sbatch: int = 0
    squeue: int = 0
    scontrol: int = 0
    sacct: int = 0
    scancel: int = 0
    polls: int = 0


class SlurmExecutor(Executor):
    name = "slurm"

    def __init__(
        self,
        report: Any,
        *,
        poll_interval: float = 1.0,
        max_poll_interval: float = 30.0,
        backoff: float = 1.5,
        max_array_size: int = 1000,
        retries: int | None = None,
        slurm_options: dict[str, Any] | None = None,
        sbatch: str = "sbatch",
        squeue: str = "squeue",
        scontrol: str = "scontrol",
        sacct: str = "sacct",
        scancel: str = "scancel",
        command_timeout: float = 60.0,
        db_address: str | None = None,
        tls: dict[str, str] | None = None,
        db: str | None = None,
        db_host: str | None = None,
        db_port: int = 0,
        max_queued: int | None = None,
        group_size: int = 1,
        warm: bool | None = None,
        **options: Any,
    ):
        refuse_unknown_options("slurm", options, SLURM_OPTIONS)
        super().__init__(report)
        if poll_interval <= 0 or max_poll_interval < poll_interval or backoff < 1:
            raise ExecutorError(
                "need 0 < poll_interval <= max_poll_interval and backoff >= 1",
                field="executor.poll_interval",
            )
        if max_queued is not None and (not isinstance(max_queued, int) or max_queued < 1):
            raise ExecutorError("expected a positive integer", field="executor.max_queued")
        #: at most this many of this workflow's jobs (array tasks count one each) are in
        #: SLURM's queue at once (sites cap it: MaxSubmitJobs); the rest wait here
        self.max_queued = max_queued
        self._backlog: list[RunSpec] = []
        if not isinstance(group_size, int) or group_size < 1:
            raise ExecutorError("expected a positive integer", field="executor.group_size")
        #: runs packed into one array task (one allocation runs them one after another)
        self.group_size = group_size
        if not isinstance(max_array_size, int) or max_array_size < 1:
            raise ExecutorError("expected a positive integer", field="executor.max_array_size")
        if retries is not None and (not isinstance(retries, int) or retries < 0):
            raise ExecutorError("expected a non-negative integer", field="executor.retries")
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.backoff = float(backoff)
        self.max_array_size = max_array_size
        self.retries = retries
        self.default_options = dict(slurm_options or {})
        sbatch_lines("executor defaults", self.default_options)  # fail early on bad defaults
        self.commands = {
            "sbatch": sbatch,
            "squeue": squeue,
            "scontrol": scontrol,
            "sacct": sacct,
            "scancel": scancel,
        }
        self.command_timeout = command_timeout
        self.job_env = _db_env(db_address, tls)
        if warm is not None:  # packed array tasks fork their runs from one interpreter
            if not isinstance(warm, bool):
                raise ExecutorError("expected true or false", field="executor.warm")
            self.job_env["AUTOPOT_WARM"] = "1" if warm else "0"
        # default: no database connection from compute nodes (outcome files are ingested
        # by the orchestrator); "socket" keeps the old single-host behaviour; a db_address
        # means ZEO over TCP with mutual TLS
        if db is None:
            db = "tcp" if db_address else "none"
        if db not in ("none", "socket", "tcp", "tls") or (db == "tcp") != bool(db_address):
            raise ExecutorError(
                "expected none (default), socket, tls (served by the orchestrator), "
                "or tcp with db_address and tls",
                field="executor.db",
            )
        if not isinstance(db_port, int) or not 0 <= db_port < 65536:
            raise ExecutorError(
                "expected a port number (0: any free port)", field="executor.db_port"
            )
        #: (host, port) the orchestrator serves the database on for these jobs (db: tls)
        self.serve_tls: tuple[str, int] | None = None
        if db == "tls":
            import socket as _socket

            self.serve_tls = (db_host or _socket.gethostbyname(_socket.gethostname()), db_port)
            db = "tcp"
        self.db_access = db
        self.stats = SlurmStats()
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self._jobs: dict[str, _Job] = {}  # label -> job in flight
        self._cancelled: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._poller: asyncio.Task[None] | None = None
        self._reset_interval = False

    # ------------------------------------------------------------------ commands
    async def _run(
        self,
        tool: str,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        label: str = "",
    ) -> tuple[int, str, str]:
        exe = self.commands[tool]
        setattr(self.stats, tool, getattr(self.stats, tool) + 1)
        try:
            proc = await asyncio.create_subprocess_exec(
                exe,
                *args,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            who = f"task {label}: " if label else ""
            raise ExecutorError(
                f"{who}{exe!r} not found on PATH (is SLURM installed and loaded?)",
                field=f"executor.{tool}",
            ) from None
        except OSError as exc:
            raise ExecutorError(f"cannot run {exe!r}: {exc}", field=f"executor.{tool}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.command_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise _Timeout(
                f"{exe} did not answer within {self.command_timeout:.0f} s",
                field=f"executor.{tool}",
            ) from None
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    # ------------------------------------------------------------------ lifetime
    async def start(self) -> None:
        if self._poller is None:
            self._wake = asyncio.Event()
            self._poller = asyncio.get_running_loop().create_task(
                self._poll_loop(), name="slurm poller"
            )

    def _kick(self) -> None:
        self._reset_interval = True
        if self._wake is not None:
            self._wake.set()

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None

    async def settle(self, labels: list[str], timeout: float) -> None:
        jobs = [self._jobs[label] for label in labels if label in self._jobs]
        if jobs:
            self._kick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(j.done.wait() for j in jobs)), timeout)

    # ------------------------------------------------------------------ submission
    async def submit(self, specs: list[RunSpec]) -> list[str]:
        await self.start()
        # 1. validate everything before anything is submitted
        for spec in specs:
            self._lines(spec)  # raises, naming the task and the option
        for spec in specs:
            if any(c in str(spec.run_dir) for c in "\n\r"):
                raise ExecutorError(
                    f"task {spec.label}: run directory name contains a line break", field="run_dir"
                )
        ids: dict[str, str] = {}
        # 2. runs with an unfinished submission intent: adopt their job, never submit twice
        in_doubt = [s for s in specs if read_intent(s.run_dir).get("open")]
        if in_doubt:
            ids.update(await self.reconcile(in_doubt))
        rest = [spec for spec in specs if spec.label not in ids]
        # 3. beyond the queue cap, runs wait in the backlog (id "" until they are queued)
        if self.max_queued is not None:
            free = self._free_runs() if not self._backlog else 0
            for spec in rest[free:]:
                ids[spec.label] = ""
            self._backlog.extend(rest[free:])
            rest = rest[:free]
        # 4. group the rest by identical options and environment; one sbatch per array
        for job in await self._submit_now(rest):
            ids[job.label] = job.job_id
        self._kick()
        return [ids[spec.label] for spec in specs]

    async def _submit_now(self, specs: list[RunSpec]) -> list[_Job]:
        """sbatch ``specs`` (grouped into arrays); all or nothing."""
        groups: dict[tuple[Any, ...], list[RunSpec]] = {}
        for spec in specs:
            env = tuple(sorted((k, v) for k, v in spec.env.items() if k != "AUTOPOT_RUN_DIR"))
            groups.setdefault((tuple(self._lines(spec)), env), []).append(spec)
        submitted: list[_Job] = []
        try:
            for (group_lines, _), members in groups.items():
                step = self.max_array_size * self.group_size
                for start in range(0, len(members), step):
                    chunk = members[start : start + step]
                    submitted.extend(await self._sbatch(chunk, list(group_lines)))
        except BaseException:
            await self._undo(submitted)  # raising means nothing was submitted
            raise
        for job in submitted:
            self._jobs[job.label] = job
        return submitted

    def _free_runs(self) -> int:
        """How many more runs fit under ``max_queued`` (jobs, each holding group_size runs)."""
        assert self.max_queued is not None
        queued = len({job.job_id for job in self._jobs.values()})
        return max(self.max_queued - queued, 0) * self.group_size

    async def _drain_backlog(self) -> None:
        """Queue waiting runs as far as the cap allows (after a job of ours ended)."""
        if self.gate is not None and self._backlog:
            try:
                await self.gate()  # nothing is queued while the database is unreachable
            except Exception:  # noqa: BLE001 - the engine is giving up; a restart resubmits
                return
        while self._backlog and self.max_queued is not None:
            free = self._free_runs()
            if free <= 0:
                return
            chunk, self._backlog = self._backlog[:free], self._backlog[free:]
            try:
                jobs = await self._submit_now(chunk)
            except ExecutorError as exc:
                for spec in chunk:
                    await self.emit(
                        Outcome(spec.label, State.FAILED, cause=f"submission failed: {exc}")
                    )
                continue
            for job in jobs:
                await self.emit(Outcome(job.label, State.SUBMITTED, executor_id=job.job_id))
            self._kick()

    def _lines(self, spec: RunSpec) -> list[str]:
        options = spec.run_params.get("slurm_options") or {}
        if not isinstance(options, dict):
            return sbatch_lines(spec.label, options)  # raises with the task's name
        merged = {**self.default_options, **options}
        return sbatch_lines(spec.label, merged)

    async def _sbatch(self, chunk: list[RunSpec], lines: list[str]) -> list[_Job]:
        token = uuid.uuid4().hex[:16]
        first = chunk[0]
        name = job_name(lines, first.task, token)
        if len(chunk) == 1:
            submit_dir = first.run_dir
            script_name, log_pattern = SCRIPT_NAME, "slurm-%j.out"
        else:
            base = Path(os.path.commonpath([str(s.run_dir.parent) for s in chunk]))
            submit_dir = base / ".slurm" / token
            submit_dir.mkdir(parents=True, exist_ok=True)
            (submit_dir / RUN_LIST).write_text("".join(f"{s.run_dir.resolve()}\n" for s in chunk))
            script_name, log_pattern = ARRAY_SCRIPT_NAME, "slurm-%A_%a.out"
        group = self.group_size if len(chunk) > 1 else 1
        if group > 1:
            (submit_dir / GROUP_FILE).write_text(f"{group}\n")
        script = submit_dir / script_name
        script.write_text(
            batch_script(
                lines, job_name=name, token=token, log_pattern=log_pattern, grouped=group > 1
            )
        )
        # The intent is on disk before sbatch runs: a crash from here on is recoverable.
        for index, spec in enumerate(chunk):
            (spec.run_dir / EXIT_FILE).unlink(missing_ok=True)
            (spec.run_dir / PID_FILE).unlink(missing_ok=True)
            write_intent(
                spec.run_dir,
                {
                    "open": True,
                    "token": token,
                    "index": index // group if len(chunk) > 1 else None,
                    "grouped": group > 1,
                    "job_name": name,
                    "script": str(script),
                    "attempt": spec.attempt,
                    "time": time.time(),
                },
            )
        args = ["--parsable"]
        if len(chunk) > 1:
            args.append(f"--array=0-{(len(chunk) - 1) // group}")
        args.append(script_name)
        env = {
            **os.environ,
            **{k: v for k, v in first.env.items() if k != "AUTOPOT_RUN_DIR"},
            **self.job_env,
        }
        who = first.label + (f" (and {len(chunk) - 1} more)" if len(chunk) > 1 else "")
        try:
            code, out, err = await self._run("sbatch", *args, cwd=submit_dir, env=env, label=who)
        except _Timeout:
            # sbatch may or may not have queued it: ask SLURM by token before giving up.
            found = await self._find_tokens({token})
            if token not in found:
                close_intents(chunk)
                raise ExecutorError(
                    f"task {who}: sbatch did not answer and no job was queued",
                    field="executor.sbatch",
                ) from None
            code, out, err = 0, found[token], ""
        except ExecutorError:
            close_intents(chunk, remove=True)
            raise
        job_id = out.strip().split(";")[0].strip()
        if code != 0 or not job_id.isdigit():
            close_intents(chunk, remove=True)
            message = " ".join((err.strip() or out.strip() or f"exit status {code}").split())
            option = _blamed_option(message)
            raise ExecutorError(
                f"task {who}: sbatch rejected the job: {message}",
                field=f"slurm_options.{option}" if option else "slurm_options",
            )
        jobs = []
        for index, spec in enumerate(chunk):
            jid = f"{job_id}_{index // group}" if len(chunk) > 1 else job_id
            jobs.append(
                _Job(
                    spec.label,
                    spec.run_dir,
                    jid,
                    spec.attempt,
                    token,
                    raw_id="" if len(chunk) > 1 else job_id,
                    grouped=group > 1,
                )
            )
            update_intent(spec.run_dir, job_id=jid)
        log.info(
            "sbatch %s: job %s (%d run%s)",
            script,
            job_id,
            len(chunk),
            "s" if len(chunk) > 1 else "",
        )
        return jobs

    async def _undo(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        with contextlib.suppress(ExecutorError):
            await self._run("scancel", *sorted({j.job_id.split("_")[0] for j in jobs}))
        for job in jobs:
            close_intents([job], remove=True)

    # ------------------------------------------------------------------ restart
    async def reconcile(self, specs: list[RunSpec]) -> dict[str, str]:
        """Runs whose sbatch may have succeeded without the id being recorded: find their
        jobs by token (squeue, then sacct by job name) and adopt them. Returns the labels
        adopted (with job ids); an intent whose job ran and ended is reported, not rerun."""
        intents = {spec.label: read_intent(spec.run_dir) for spec in specs}
        tokens = {i["token"] for i in intents.values() if i.get("open") and i.get("token")}
        found = await self._find_tokens(tokens) if tokens else {}
        adopted: dict[str, str] = {}
        for spec in specs:
            intent = intents[spec.label]
            if not intent.get("open"):
                continue
            base = found.get(intent.get("token", ""))
            if base is None:
                base = await self._sacct_by_name(intent.get("job_name", ""))
            if base is None:
                close_intents([spec])
                ended = read_exit_file(spec.run_dir) if exit_after(spec.run_dir, intent) else None
                if ended is None:
                    continue  # sbatch never queued it (or nothing ran): submit afresh
                # it ran and ended while nobody watched, and SLURM forgot it: never rerun
                jid = str(intent.get("job_id") or "")
                outcome = Outcome(
                    spec.label,
                    State.FINISHED if ended == 0 else State.FAILED,
                    exit_code=ended,
                    cause="" if ended == 0 else f"exit code {ended} (from {EXIT_FILE})",
                    executor_id=jid,
                )
                asyncio.get_running_loop().call_soon(self._emit_soon, outcome)
                adopted[spec.label] = jid
                continue
            index = intent.get("index")
            jid = f"{base}_{index}" if index is not None else base
            log.warning(
                "%s: adopting SLURM job %s found by its token (submitted before a restart)",
                spec.label,
                jid,
            )
            self._jobs[spec.label] = _Job(
                spec.label,
                spec.run_dir,
                jid,
                int(intent.get("attempt") or spec.attempt),
                intent["token"],
                grouped=bool(intent.get("grouped")),
            )
            update_intent(spec.run_dir, job_id=jid)
            adopted[spec.label] = jid
        if adopted:
            self._kick()
        return adopted

    async def _find_tokens(self, tokens: set[str]) -> dict[str, str]:
        """token -> base job id of jobs SLURM still remembers (any state)."""
        rows = await self._squeue()
        out: dict[str, str] = {}
        for row in rows.values():
            m = _TOKEN_RE.search(row["comment"])
            if m and m.group(1) in tokens:
                out[m.group(1)] = row["id"].split("_")[0]
        return out

    async def _sacct_by_name(self, name: str) -> str | None:
        if not name:
            return None
        for extra in ([], ["-c"]):
            try:
                code, out, _ = await self._run(
                    "sacct", *extra, "-n", "-P", "-X", f"--name={name}", "-o", "JobID,JobName"
                )
            except ExecutorError:
                return None
            if code == 0:
                for line in out.splitlines():
                    jid, _, jname = line.partition("|")
                    if jname.strip() == name and jid.strip():
                        return jid.strip().split("_")[0]
        return None

    async def adopt(self, label: str, executor_id: str, run_dir: Path) -> bool:
        """Watch a job a previous orchestrator submitted; False if SLURM forgot it.

        Without ``executor_id`` (the orchestrator died between sbatch and recording it)
        the job is found through the run directory's open intent, by its token.
        """
        await self.start()
        intent = read_intent(run_dir)
        if not executor_id and intent.get("open"):
            spec = RunSpec(
                label.rpartition(".")[0],
                0,
                label,
                run_dir,
                {},
                attempt=int(intent.get("attempt") or 1),
            )
            return bool(await self.reconcile([spec]))
        if not re.fullmatch(r"\d+(_\d+)?", executor_id or ""):
            return False
        job = _Job(
            label,
            run_dir,
            executor_id,
            token=intent.get("token", ""),
            grouped=bool(intent.get("grouped")),
        )
        if await self._lookup(job) is None:
            return False
        self._jobs[label] = job
        self._kick()
        return True

    # ------------------------------------------------------------------ cancel
    async def cancel(self, labels: list[str]) -> None:
        waiting = [spec for spec in self._backlog if spec.label in labels]
        if waiting:
            self._backlog = [spec for spec in self._backlog if spec.label not in labels]
            for spec in waiting:
                await self.emit(
                    Outcome(spec.label, State.CANCELLED, cause="cancelled before submission")
                )
        jobs = [self._jobs[label] for label in labels if label in self._jobs]
        self._cancelled.update(labels)
        if not jobs:
            return
        code, _, err = await self._run("scancel", *sorted({j.job_id for j in jobs}))
        if code != 0:
            log.warning("scancel: %s", err.strip())
        self._kick()

    # ------------------------------------------------------------------ polling
    async def _poll_loop(self) -> None:
        assert self._wake is not None
        interval = self.poll_interval
        while True:
            if not self._jobs:
                await self._wake.wait()
            self._wake.clear()
            if self._reset_interval:
                self._reset_interval, interval = False, self.poll_interval
            try:
                changed = await self.poll()
            except ExecutorError as exc:  # squeue down or slow: keep the jobs, try later
                log.warning("SLURM poll failed: %s", exc)
                changed = False
            except Exception:  # noqa: BLE001 - a bug must not silently stop all tracking
                log.exception("SLURM poll failed")
                changed = False
            # Back off while nothing changes; hold the pace while jobs keep changing;
            # a submission or cancel (an end is due soon) starts again from poll_interval.
            if not changed:
                interval = min(interval * self.backoff, self.max_poll_interval)
            if self._jobs:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval)

    async def poll(self) -> bool:
        """One round: one squeue for all jobs, lookups for jobs that left it. True if anything changed."""
        if not self._jobs:
            return False
        self.stats.polls += 1
        rows = await self._squeue()
        changed = False
        gone = []
        for job in list(self._jobs.values()):
            row = rows.get(job.job_id)
            if row is None:
                gone.append(job)
                continue
            job.raw_id = row["raw"] or job.raw_id
            changed |= await self._observe(
                job, row["state"], _wait_status(row["exit"]), row["reason"]
            )
        for job in gone:
            found = await self._lookup(job)
            if found is None:
                await self._vanished(job)
                changed = True
            else:
                state, code, reason = found
                changed |= await self._observe(job, state, code, reason)
        return changed

    async def _squeue(self) -> dict[str, dict[str, str]]:
        code, out, err = await self._run(
            "squeue", "-h", "-r", "-t", "all", "-u", self.user, "-O", _SQUEUE_FORMAT
        )
        if code != 0:
            raise ExecutorError(
                f"squeue failed: {' '.join(err.split()) or code}", field="executor.squeue"
            )
        rows = {}
        for line in out.splitlines():
            parts = line.split("|", 5)
            if len(parts) < 6:
                continue
            jid, raw, state, exit_raw, reason, comment = (p.strip() for p in parts)
            rows[jid] = {
                "id": jid,
                "raw": raw,
                "state": state.split()[0] if state else "",
                "exit": exit_raw,
                "reason": reason,
                "comment": comment,
            }
        return rows

    async def _lookup(self, job: _Job) -> tuple[str, tuple[int | None, int | None], str] | None:
        """State of a job squeue no longer lists: scontrol, then sacct, then sacct -c."""
        code, out, _ = await self._run("scontrol", "show", "job", "-o", job.job_id)
        if code == 0 and out.strip():
            fields = dict(re.findall(r"(\w+)=(\S*)", out.splitlines()[0]))
            state = fields.get("JobState", "")
            if state:
                return state, _exit_field(fields.get("ExitCode", "")), fields.get("Reason", "")
        candidates = [(["-X", "-j", job.job_id], job.job_id)]
        if job.raw_id:  # jobcomp/filetxt records plain ids only
            candidates.append((["-c", "-j", job.raw_id], job.raw_id))
        for args, wanted in candidates:
            try:
                code, out, _ = await self._run(
                    "sacct", "-n", "-P", *args, "-o", "JobID,State,ExitCode"
                )
            except ExecutorError:
                break
            if code != 0:
                continue
            for line in out.splitlines():
                parts = line.split("|")
                if len(parts) >= 3 and parts[0].strip() == wanted:
                    return parts[1].split()[0], _exit_field(parts[2]), "sacct"
        return None

    async def _observe(
        self, job: _Job, state: str, code: tuple[int | None, int | None], reason: str
    ) -> bool:
        if state in ACTIVE:
            changed = state != job.state
            job.state = state
            if state in RUNNING_STATES and not job.running:
                job.running = True
                await self.emit(Outcome(job.label, State.RUNNING, executor_id=job.job_id))
            return changed
        job.state = state
        await self._finish(job, self._outcome(job, state, code, reason))
        return True

    def _emit_soon(self, outcome: Outcome) -> None:
        """Report from a plain callback (after adopt() has returned to the engine)."""
        asyncio.ensure_future(self.emit(outcome))

    def _outcome(
        self, job: _Job, state: str, code: tuple[int | None, int | None], reason: str
    ) -> Outcome:
        exit_code, sig = code
        from_file = read_exit_file(job.run_dir)
        if exit_code is None or (exit_code == 0 and sig is None and from_file not in (None, 0)):
            exit_code = from_file
        where = f"SLURM job {job.job_id}"
        if job.grouped and state != "CANCELLED":
            # the array task's status is the group's; each run's own is in its exit file
            if from_file == 0:
                return Outcome(job.label, State.FINISHED, exit_code=0, executor_id=job.job_id)
            if from_file is not None:
                cause, retry = exit_cause(from_file)
                last = tail(job.run_dir / STDERR, lines=1)
                return Outcome(
                    job.label,
                    State.FAILED,
                    exit_code=from_file,
                    cause=f"{where}: {cause}" + (f": {last}" if last and not retry else ""),
                    executor_id=job.job_id,
                    retry=retry,
                )
            if state == "COMPLETED":
                return Outcome(
                    job.label,
                    State.FAILED,
                    cause=f"{where} ended before this run of its group started",
                    executor_id=job.job_id,
                )
        if state == "COMPLETED":
            return Outcome(
                job.label, State.FINISHED, exit_code=exit_code or 0, executor_id=job.job_id
            )
        if state == "CANCELLED":
            by = (
                "cancelled by autopot"
                if job.label in self._cancelled
                else "cancelled outside autopot (scancel or an administrator)"
            )
            return Outcome(
                job.label,
                State.CANCELLED,
                exit_code=exit_code,
                cause=f"{where} {by}",
                executor_id=job.job_id,
            )
        if state == "FAILED":
            if sig:
                cause = f"{where} FAILED: killed by signal {_signame(sig)}"
            else:
                cause = f"{where} FAILED: exit code {exit_code}"
            last = tail(job.run_dir / STDERR, lines=1)
            if last:
                cause += f": {last}"
            return Outcome(
                job.label, State.FAILED, exit_code=exit_code, cause=cause, executor_id=job.job_id
            )
        cause = f"{where} {state}: {_CAUSES.get(state, reason or 'ended abnormally')}"
        retry = state in RETRYABLE and (self.retries is None or job.attempt <= self.retries)
        return Outcome(
            job.label,
            State.FAILED,
            exit_code=exit_code,
            cause=cause,
            executor_id=job.job_id,
            retry=retry,
        )

    async def _vanished(self, job: _Job) -> None:
        code = read_exit_file(job.run_dir)
        if code is not None:
            state = State.FINISHED if code == 0 else State.FAILED
            cause = (
                ""
                if code == 0
                else f"SLURM job {job.job_id} left no record; exit code {code} from {EXIT_FILE}"
            )
            outcome = Outcome(job.label, state, exit_code=code, cause=cause, executor_id=job.job_id)
        else:
            outcome = Outcome(
                job.label,
                State.FAILED,
                executor_id=job.job_id,
                cause=f"SLURM job {job.job_id} vanished (not in squeue, scontrol or sacct) without an exit code",
            )
        await self._finish(job, outcome)

    async def _finish(self, job: _Job, outcome: Outcome) -> None:
        self._jobs.pop(job.label, None)
        self._cancelled.discard(job.label)
        update_intent(job.run_dir, open=False, ended=job.state, job_id=job.job_id)
        job.done.set()
        await self.emit(outcome)
        if self._backlog:
            await self._drain_backlog()


class _Timeout(ExecutorError):
    """A SLURM command did not answer in time."""


# ---------------------------------------------------------------------- helpers
def _db_env(address: str | None, tls: dict[str, str] | None) -> dict[str, str]:
    """Job environment for reaching a ZEO server on TCP (with mutual TLS)."""
    if tls is not None and not address:
        raise ExecutorError(
            "tls needs db_address (host:port of the TLS ZEO server)", field="executor.tls"
        )
    if not address:
        return {}
    from autopot.store.database import parse_address

    if not isinstance(parse_address(address), tuple):
        raise ExecutorError("expected host:port", field="executor.db_address")
    env = {"AUTOPOT_DB_ADDRESS": address}
    if tls is not None:
        if not isinstance(tls, dict) or set(tls) != {"certificate", "key", "ca"}:
            raise ExecutorError(
                "expected {certificate, key, ca} (client certificate, its key, server CA)",
                field="executor.tls",
            )
        for name, var in (
            ("certificate", "AUTOPOT_TLS_CERT"),
            ("key", "AUTOPOT_TLS_KEY"),
            ("ca", "AUTOPOT_TLS_CA"),
        ):
            path = Path(tls[name]).expanduser().resolve()
            if not path.is_file():
                raise ExecutorError("TLS file not found", file=path, field=f"executor.tls.{name}")
            env[var] = str(path)
    return env


def _wait_status(text: str) -> tuple[int | None, int | None]:
    """squeue's exit_code is a raw wait status: (exit code, signal)."""
    try:
        status = int(text)
    except ValueError:
        return None, None
    if status & 0x7F:
        return None, status & 0x7F
    return (status >> 8) & 0xFF, None


def _exit_field(text: str) -> tuple[int | None, int | None]:
    """scontrol/sacct ``ExitCode=3:0`` (exit code : signal)."""
    code, _, sig = text.strip().partition(":")
    try:
        c, s = int(code), int(sig or 0)
    except ValueError:
        return None, None
    return (None, s) if s else (c, None)


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def _blamed_option(message: str) -> str:
    """Which slurm option sbatch complained about, when its message says so."""
    lower = message.lower()
    for key, words in (
        ("partition", ("partition",)),
        ("account", ("account",)),
        ("qos", ("qos",)),
        ("time", ("time limit", "time_limit", "timelimit")),
        ("mem", ("memory",)),
        ("constraint", ("feature", "constraint")),
        ("nodes", ("node count", "nodes")),
        ("cpus_per_task", ("cpus", "cpu count")),
        ("ntasks", ("tasks",)),
    ):
        if any(w in lower for w in words):
            return key
    return ""
