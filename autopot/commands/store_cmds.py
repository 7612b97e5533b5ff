"""``autopot runs``, ``autopot show`` and ``autopot db serve|stop|status``."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from autopot.commands.options import WORKFLOW_DIR
from autopot.errors import StoreError

if TYPE_CHECKING:
    from autopot.store.workflow_records import WorkflowRecords


def _open(workflow_dir: str | None) -> WorkflowRecords:
    from autopot.store.workflow_records import WorkflowRecords

    return WorkflowRecords.open(workflow_dir, require_run=False)


def _plain(value: Any, for_table: bool) -> Any:
    """JSON-able values; arrays shown by shape in tables, as lists in JSON/CSV."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return f"array{list(value.shape)}" if for_table else value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (list, tuple)) and for_table and len(value) > 4:
        return f"list[{len(value)}]"
    if isinstance(value, dict) and for_table:
        return json.dumps(value, default=str)[:40]
    return value


def _row(run: Any, for_table: bool) -> dict[str, Any]:
    row = run.summary()
    if row.get("started") and row.get("ended"):
        row["duration_s"] = round(row["ended"] - row["started"], 3)
    for key in ("created", "started", "ended"):
        if row.get(key):
            fmt = "%m-%d %H:%M:%S" if for_table else "%Y-%m-%d %H:%M:%S"
            row[key] = time.strftime(fmt, time.localtime(row[key]))
    row.update({f"q.{k}": v for k, v in run.quantities.items()})
    return {k: _plain(v, False) for k, v in row.items()}


DEFAULT_COLUMNS = ["id", "state", "started", "duration_s", "exit_code", "cause"]


@click.command()
@click.argument("task")
@click.option(
    "--where", "-w", multiple=True, help='constraints, e.g. "state = FINISHED, grade > 10"'
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="table: fits the terminal (80 columns when piped); json/csv: every field, full precision",
)
@click.option("--limit", type=int, default=None, help="at most this many runs")
@click.option(
    "--columns",
    default=None,
    help="comma-separated columns (id, state, job.X, run.X, q.X, started, duration_s, ...)",
)
@click.option(
    "--width", type=int, default=None, help="table width (default: the terminal's, 80 when piped)"
)
@WORKFLOW_DIR
def runs(
    task: str,
    where: tuple[str, ...],
    fmt: str,
    limit: int | None,
    columns: str | None,
    width: int | None,
    workflow_dir: str | None,
) -> None:
    """List the runs of TASK matching constraints (during or after a workflow)."""
    import shutil

    with _open(workflow_dir) as records:
        rows = [_row(r, fmt == "table") for r in records.select(task, where, limit=limit)]
        directory = records.directory
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    if cols:
        known = {k for r in rows for k in r} | set(DEFAULT_COLUMNS)
        unknown = [c for c in cols if c not in known]
        if rows and unknown:
            raise StoreError(
                f"unknown column {unknown[0]!r}; known: {', '.join(sorted(known))}",
                field="--columns",
            )
    if fmt == "json":
        click.echo(
            json.dumps(
                [{k: r.get(k) for k in cols} if cols else r for r in rows], default=str, indent=1
            )
        )
        return
    if fmt == "csv":
        fields = cols or list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {
                    k: json.dumps(r.get(k)) if isinstance(r.get(k), (list, dict)) else r.get(k)
                    for k in fields
                }
            )
        click.echo(buf.getvalue(), nl=False)
        return
    from autopot.commands.table import render

    if cols is None:  # the run's own scalars first: they are what a user came for
        scalars = sorted(
            {
                k
                for r in rows
                for k, v in r.items()
                if k.startswith("q.") and isinstance(v, (int, float)) and not isinstance(v, bool)
            }
        )
        params = sorted({k for r in rows for k in r if k.startswith("job.")})
        cols = DEFAULT_COLUMNS + scalars + params
    width = width or shutil.get_terminal_size((80, 24)).columns
    text, left_out = render(
        rows,
        cols,
        width=width,
        workflow_dir=directory,
        keep_empty=columns is not None,
        title=f"{task}: {len(rows)} runs",
    )
    click.echo(text)
    if left_out:
        click.echo(
            click.wrap_text(
                f"(+{len(left_out)} columns not shown: {', '.join(left_out[:4])}"
                f"{', ...' if len(left_out) > 4 else ''}; pick with --columns, "
                "or --format json|csv for all)",
                width,
            )
        )


@click.command()
@click.argument("label")
@click.option("--lines", default=10, show_default=True, help="log lines to show")
@WORKFLOW_DIR
def show(label: str, lines: int, workflow_dir: str | None) -> None:
    """One run (TASK.ID): parameters, state history, timings, files, quantities, log tails."""
    from autopot.executors.base import STDERR, STDOUT, tail

    with _open(workflow_dir) as records:
        directory = records.directory
        run = records.run(label)
        out = [
            f"{run.label}  {run.state}  (workflow run {run.run_name!r}, job {run.job.id}, attempts {run.attempts})"
        ]
        if run.cause:
            out.append(f"cause: {run.cause}")
        out.append(
            f"executor: {run.executor} {run.executor_id}  host: {run.host}  exit code: {run.exit_code}"
        )
        out.append(f"directory: {directory / run.directory if run.directory else '-'}")
        out.append("job parameters:")
        out += [f"  {k} = {json.dumps(v, default=str)}" for k, v in run.job.params.items()]
        out.append("run parameters:")
        out += [f"  {k} = {json.dumps(v, default=str)}" for k, v in run.params.items()]
        out.append("history:")
        out += [
            f"  {time.strftime('%H:%M:%S', time.localtime(t))} {s}" + (f"  {c}" if c else "")
            for t, s, c in run.history
        ]
        if run.started and run.ended:
            out.append(f"duration: {run.ended - run.started:.2f} s")
        out.append("quantities:")
        out += [f"  {k} = {_plain(v, True)}" for k, v in run.quantities.items()]
        out.append(f"files ({len(run.manifest)}):")
        out += [
            f"  {sha[:12]}  {size:>10}  {name}"
            for name, (sha, size) in sorted(run.manifest.items())
        ]
        prov = run.provenance.data if run.provenance is not None else {}
        out.append(
            "provenance: "
            + ", ".join(f"{k} {v}" for k, v in prov.items())
            + f", template {run.job.source_hash[:12]}"
        )
        run_dir = directory / run.directory if run.directory else None
    click.echo("\n".join(out))
    if run_dir is not None:
        for name in (STDOUT, STDERR, "traceback.txt"):
            text = tail(run_dir / name, lines=lines)
            if text:
                click.echo(f"--- {name} (last {lines} lines)\n{text}")


@click.group()
def db() -> None:
    """The workflow's database server (ZEO)."""


@db.command()
@WORKFLOW_DIR
@click.option(
    "--tcp",
    default=None,
    help="serve on HOST:PORT instead of the Unix socket (needs TLS off loopback)",
)
@click.option("--tls-cert", type=click.Path(path_type=Path), default=None)
@click.option("--tls-key", type=click.Path(path_type=Path), default=None)
@click.option(
    "--tls-ca",
    type=click.Path(path_type=Path),
    default=None,
    help="CA that signs client certificates",
)
def serve(
    workflow_dir: str | None,
    tcp: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
) -> None:
    """Serve the database in the foreground until interrupted (Unix socket by default)."""
    import os
    import signal

    from autopot.locate import resolve_workflow_dir
    from autopot.store.server import TLSFiles, start_server, stop_server

    tls = None
    if any((tls_cert, tls_key, tls_ca)):
        if not all((tls_cert, tls_key, tls_ca)):
            raise StoreError("TLS needs --tls-cert, --tls-key and --tls-ca together", field="tls")
        tls = TLSFiles(tls_cert, tls_key, tls_ca)  # type: ignore[arg-type]
    directory = resolve_workflow_dir(workflow_dir)
    # Handlers first: a signal that arrives while the server starts still stops it.
    received: list[int] = []
    handlers = {
        sig: signal.signal(sig, lambda signum, _frame: received.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        handle = start_server(directory, address=tcp, tls=tls)
    except BaseException:
        for sig, old in handlers.items():
            signal.signal(sig, old)
        raise
    where = (
        handle.address
        if isinstance(handle.address, str)
        else f"{handle.address[0]}:{handle.address[1]}"
    )
    click.echo(
        f"serving {directory / 'db' / 'autopot.fs'} on {where}"
        f"{' with mutual TLS' if tls else ''} (pid {handle.pid}); Ctrl-C stops",
        err=True,
    )
    # Foreground: the server is our child; SIGINT/SIGTERM/SIGHUP stop it cleanly, and if it
    # is stopped from elsewhere (`autopot db stop`) we exit with it.
    exit_status: int | None = None
    try:
        while not received:
            pid, wait_status = os.waitpid(handle.pid, os.WNOHANG)
            if pid:
                exit_status = wait_status
                break
            time.sleep(0.1)
    finally:
        if exit_status is None:
            stop_server(handle.pid)
        for sig, old in handlers.items():
            signal.signal(sig, old)
    if exit_status is not None:
        code = os.waitstatus_to_exitcode(exit_status)
        if code not in (0, -signal.SIGTERM):
            raise StoreError(f"database server exited with {code}; see its log", file=handle.log)
    click.echo("server stopped", err=True)


@db.command()
@WORKFLOW_DIR
def stop(workflow_dir: str | None) -> None:
    """Stop the workflow's database server (by its PID file)."""
    from autopot.locate import resolve_workflow_dir
    from autopot.store.server import server_pid, stop_server

    directory = resolve_workflow_dir(workflow_dir)
    pid = server_pid(directory)
    if pid is None:
        raise StoreError("no database server is running", file=directory / "db")
    stop_server(pid)
    click.echo(f"stopped server pid {pid}")


@db.command()
@WORKFLOW_DIR
def status(workflow_dir: str | None) -> None:
    """Is a server running, where is the database, how big, how many runs."""
    from autopot.locate import resolve_workflow_dir
    from autopot.store.database import WorkflowPaths, socket_alive
    from autopot.store.server import server_pid

    directory = resolve_workflow_dir(workflow_dir)
    paths = WorkflowPaths(directory)
    pid = server_pid(directory)
    click.echo(
        f"database: {paths.db_file} ({paths.db_file.stat().st_size if paths.db_file.exists() else 0} bytes)"
    )
    click.echo(
        f"server: {'pid ' + str(pid) if pid else 'not running'}"
        + (f", socket {paths.socket}" if socket_alive(paths.socket) else "")
    )
    if paths.db_file.exists():
        with _open(str(directory)) as records:
            for name in records.task_names():
                task_type = records.task_type(name)
                click.echo(f"  {name}: {len(task_type.runs)} runs, {len(task_type.jobs)} jobs")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
