"""``autopot orchestrator start|status|stop``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from autopot.errors import EXIT_CODES_HELP, AutopotError, WorkflowError

_MOTOKO = click.option(
    "-c",
    "--motoko",
    "motoko",
    default="motoko.yaml",
    show_default=True,
    type=click.Path(dir_okay=True, path_type=Path),
    help="the workflow's motoko.yaml (or its folder)",
)
_WF = click.option(
    "-W",
    "--workflow-dir",
    "workflow_dir",
    default=None,
    type=click.Path(path_type=Path),
    help="runtime directory (database, runs, logs); default: motoko.yaml's directory:",
)
_RUN_NAME = click.option(
    "--run-name", default=None, help="workflow run name (default: 'default'; status: latest)"
)


@click.group()
def orchestrator() -> None:
    """Run a workflow's orchestrator, watch it, stop it."""


@orchestrator.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@_MOTOKO
@_WF
@_RUN_NAME
@click.option(
    "--config",
    "options_file",
    default=None,
    type=click.Path(path_type=Path),
    help="workflow options YAML (flag: value); flags on the command line override it",
)
@click.option("--detach", is_flag=True, help="run in the background; follow with 'status --follow'")
@click.option("--keep-server", is_flag=True, help="leave the database server running at the end")
@click.option(
    "-h", "--help", "show_help", is_flag=True, help="show this message and the workflow's flags"
)
@click.pass_context
def start(
    ctx: click.Context,
    motoko: Path,
    workflow_dir: Path | None,
    run_name: str | None,
    options_file: Path | None,
    detach: bool,
    keep_server: bool,
    show_help: bool,
) -> None:
    """Start (or resume) the workflow; extra flags go to the orchestrator module.

    Every flag and input file is checked before anything is written; a refused start
    leaves the workflow's database as it was.
    """
    from autopot.engine.motoko import MotokoConfig
    from autopot.engine.runner import run_orchestrator, workflow_flags_help

    if show_help:
        text = ctx.get_help()
        try:
            flags = workflow_flags_help(MotokoConfig.load(motoko, workflow_dir))
        except AutopotError as exc:
            flags = f"(cannot read the workflow's flags: {exc})"
        click.echo(
            f"{text}\n\nWorkflow flags (declared by the orchestrator module):\n{flags}\n\n"
            + click.wrap_text(EXIT_CODES_HELP)
        )
        return
    if options_file is not None and not options_file.is_file():
        raise WorkflowError("options file not found", file=options_file, field="--config")
    argv = list(ctx.args)
    if detach:
        _detach(motoko, workflow_dir, run_name, keep_server, options_file, argv)
        return
    status = run_orchestrator(
        motoko,
        run_name=run_name,
        argv=argv,
        keep_server=keep_server,
        options_file=options_file,
        workflow_dir=workflow_dir,
    )
    if status:
        raise click.exceptions.Exit(status)


def _detach(
    motoko: Path,
    workflow_dir: Path | None,
    run_name: str | None,
    keep_server: bool,
    options_file: Path | None,
    argv: list[str],
) -> None:
    from autopot.engine.motoko import MotokoConfig
    from autopot.engine.runner import check_workflow_params, is_running, parse_workflow_args

    config = MotokoConfig.load(motoko, workflow_dir)
    config.schemas()
    config.load_orchestrator()
    params = parse_workflow_args(
        config, argv, options_file
    )  # bad input fails here, not in the background
    check_workflow_params(
        config, params, run_name or "default", options_file=options_file, argv=argv
    )
    if is_running(config.directory):
        raise WorkflowError(
            "an orchestrator is already running on this workflow", file=config.directory
        )
    logs = config.directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = (
        logs / f"orchestrator-{run_name or 'default'}.log"
    )  # console stream; the runner also writes a timestamped log
    cmd = [
        sys.executable,
        "-m",
        "autopot.cli",
        "orchestrator",
        "start",
        "-c",
        str(config.path),
        "-W",
        str(config.directory),
    ]
    if run_name:
        cmd += ["--run-name", run_name]
    if keep_server:
        cmd.append("--keep-server")
    if options_file is not None:
        cmd += ["--config", str(options_file.resolve())]
    cmd += argv
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=os.getcwd(),
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if is_running(config.directory) == proc.pid:
            click.echo(f"orchestrator started in the background (pid {proc.pid}); log: {log_path}")
            return
        if proc.poll() is not None:
            raise WorkflowError(
                f"orchestrator exited at start with status {proc.returncode}; see the log",
                file=log_path,
            )
        time.sleep(0.05)
    raise WorkflowError("orchestrator did not start within 30 s; see the log", file=log_path)


def _open(motoko: Path, workflow_dir: Path | None, run_name: str | None) -> Any:
    from autopot.engine.workflow import Workflow

    return Workflow(motoko, run_name=run_name, read_only=True, workflow_dir=workflow_dir)


def status_snapshot(workflow: Any) -> dict[str, Any]:
    """Counts per task type and state for the workflow run, and its last events."""
    from autopot.engine.runner import is_running

    records = workflow.records
    record = records.workflow_record()
    counts = records.counts()
    return {
        "run_name": workflow.run_name,
        "state": getattr(record, "state", "UNKNOWN"),
        "orchestrator_pid": is_running(workflow.directory),
        "counts": counts,
        "events": list(getattr(record, "events", []))[-10:],
    }


def _render(snap: dict[str, Any]) -> Any:
    from rich import box
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    table = Table(
        title=f"workflow run {snap['run_name']!r}: {snap['state']}"
        + (f" (orchestrator pid {snap['orchestrator_pid']})" if snap["orchestrator_pid"] else ""),
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    every = ["CREATED", "SUBMITTED", "RUNNING", "FINISHED", "FAILED", "CANCELLED"]
    # states no task is in are left out: full headings, and the table still fits 80 columns
    states = [s for s in every if s == "FINISHED" or any(c.get(s) for c in snap["counts"].values())]
    table.add_column("task", no_wrap=True)
    for s in states:
        table.add_column(s.lower(), justify="right", no_wrap=True)
    table.add_column("done", width=12, no_wrap=True)
    for task, counts in snap["counts"].items():
        total = sum(counts.values())
        done = sum(counts.get(s, 0) for s in ("FINISHED", "FAILED", "CANCELLED"))
        table.add_row(
            task,
            *[str(counts.get(s, 0)) for s in states],
            ProgressBar(total=max(total, 1), completed=done, width=12),
        )
    events = Table.grid()
    for when, text in snap["events"]:
        events.add_row(time.strftime("%H:%M:%S ", time.localtime(when)), text)
    return Group(table, events)


@orchestrator.command()
@_MOTOKO
@_WF
@_RUN_NAME
@click.option("--follow", "-f", is_flag=True, help="keep refreshing until the workflow ends")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of a table")
def status(
    motoko: Path, workflow_dir: Path | None, run_name: str | None, follow: bool, as_json: bool
) -> None:
    """Counts per task type and state, progress, last events."""
    import json

    from rich.console import Console
    from rich.live import Live

    workflow = _open(motoko, workflow_dir, run_name)
    try:
        if as_json:
            click.echo(json.dumps(status_snapshot(workflow), default=str))
            return
        console = Console()
        if not follow:
            console.print(_render(status_snapshot(workflow)))
            return
        with Live(
            _render(status_snapshot(workflow)), console=console, refresh_per_second=4
        ) as live:
            while True:
                time.sleep(0.5)  # a human-rate view; the engine itself is event-driven
                workflow.store.sync()
                snap = status_snapshot(workflow)
                live.update(_render(snap))
                if snap["state"] != "RUNNING" or not snap["orchestrator_pid"]:
                    break
    finally:
        workflow.close()


@orchestrator.command()
@_MOTOKO
@_WF
@_RUN_NAME
@click.option(
    "--cancel/--drain",
    default=True,
    show_default=True,
    help="cancel running tasks now, or let them finish and submit nothing new",
)
@click.option(
    "--timeout", default=60.0, show_default=True, help="seconds to wait for the orchestrator to end"
)
def stop(
    motoko: Path, workflow_dir: Path | None, run_name: str | None, cancel: bool, timeout: float
) -> None:
    """Ask the running orchestrator to stop, and wait until it has."""
    from autopot.engine.motoko import MotokoConfig
    from autopot.engine.runner import is_running
    from autopot.engine.workflow import Workflow

    config = MotokoConfig.load(motoko, workflow_dir)
    pid = is_running(config.directory)
    if not pid:
        raise WorkflowError("no orchestrator is running on this workflow", file=config.directory)
    workflow = Workflow(motoko, run_name=run_name, workflow_dir=workflow_dir)
    try:
        record = workflow.workflow_record()
        if record is None:
            raise WorkflowError(f"no workflow run {workflow.run_name!r}", field="run_name")

        def request(root: Any) -> None:
            workflow.workflow_record(root).stop_request = "cancel" if cancel else "drain"

        workflow.store.transact(request, note="stop request")
    finally:
        workflow.close()
    click.echo(f"stop requested ({'cancel' if cancel else 'drain'}); waiting for pid {pid}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(config.directory):
            click.echo("orchestrator stopped")
            return
        time.sleep(0.1)
    raise WorkflowError(
        f"orchestrator (pid {pid}) still running after {timeout:.0f} s; send SIGTERM to stop it hard",
        file=config.directory,
    )
