"""Validated ``slurm_options`` and the batch scripts the SLURM executor writes.

Nothing a user wrote ever reaches a shell command line: options become ``#SBATCH``
lines of a file (which sbatch parses itself, no shell involved), each value checked
against a narrow pattern, and the script body is a constant. Run directories reach the
job through a file list (arrays) or the submission directory (single jobs), never as
text spliced into the script.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from autopot.errors import ExecutorError
from autopot.executors.base import EXIT_FILE, PID_FILE, STDERR, STDOUT, TASK_COMMAND

SCRIPT_NAME = "slurm_job.sh"
ARRAY_SCRIPT_NAME = "slurm_array.sh"
RUN_LIST = "runs.list"
INTENT_FILE = "slurm_intent.json"

_NAME = r"[A-Za-z0-9_.+@%-]+"
_TIME = re.compile(
    r"(?:UNLIMITED|INFINITE|unlimited|infinite"
    r"|\d+(?::\d{1,2}){0,2}"  # minutes | minutes:seconds | hours:minutes:seconds
    r"|\d+-\d{1,2}(?::\d{1,2}){0,2})"  # days-hours[:minutes[:seconds]]
)
_PATTERNS: dict[str, tuple[str, re.Pattern[str], str]] = {
    # key: (sbatch flag, value pattern, what a value looks like)
    "partition": ("--partition", re.compile(rf"{_NAME}(?:,{_NAME})*"), "a partition name (or a,b)"),
    "time": ("--time", _TIME, "minutes, H:MM:SS or D-HH:MM:SS"),
    "ntasks": ("--ntasks", re.compile(r"[1-9]\d*"), "a positive integer"),
    "nodes": ("--nodes", re.compile(r"[1-9]\d*(?:-[1-9]\d*)?"), "N or MIN-MAX"),
    "cpus_per_task": ("--cpus-per-task", re.compile(r"[1-9]\d*"), "a positive integer"),
    "mem": ("--mem", re.compile(r"\d+[KMGT]?"), "an amount such as 4000 or 4G"),
    "account": ("--account", re.compile(_NAME), "an account name"),
    "qos": ("--qos", re.compile(_NAME), "a QOS name"),
    "constraint": (
        "--constraint",
        re.compile(r"[A-Za-z0-9_.&|,:*()\[\]-]+"),
        "a feature expression",
    ),
    "job_name": (
        "--job-name",
        re.compile(r"[A-Za-z0-9_.+-]{1,64}"),
        "letters, digits, _ . + - (64 at most)",
    ),
}
ALLOWED = (*_PATTERNS, "extra")

#: Options autopot sets itself (arrays, logs, tracking token): an ``extra`` line may not.
_RESERVED = {
    "--array",
    "-a",
    "--output",
    "-o",
    "--error",
    "-e",
    "--comment",
    "--job-name",
    "-J",
    "--chdir",
    "-D",
    "--export",
    "--wrap",
    "--parsable",
    "--open-mode",
    "--input",
    "-i",
}


def _fail(label: str, key: str, message: str) -> ExecutorError:
    return ExecutorError(
        f"task {label}: {message}" if label else message,
        field=f"slurm_options.{key}" if key else "slurm_options",
    )


def check_options(options: Any) -> Any:
    """bd.yaml ``check`` of ``slurm_options``: refused when the run is created, not when
    the job is submitted (maybe hours later, after a queue of other work)."""
    sbatch_lines("", options)
    return options


def sbatch_lines(label: str, options: Any) -> list[str]:
    """``#SBATCH`` lines for a run's ``slurm_options``; ExecutorError names task and option."""
    if options is None:
        return []
    if not isinstance(options, Mapping):
        raise _fail(label, "", f"slurm_options must be a mapping, not {type(options).__name__}")
    lines = []
    for key in sorted(options):
        value = options[key]
        if key not in ALLOWED:
            raise _fail(
                label, str(key), f"unknown SLURM option {key!r} (allowed: {', '.join(ALLOWED)})"
            )
        if key == "extra":
            lines.extend(_extra_lines(label, value))
            continue
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _fail(label, key, f"expected a string or integer, not {type(value).__name__}")
        text = str(value)
        flag, pattern, shape = _PATTERNS[key]
        if not pattern.fullmatch(text):
            raise _fail(label, key, f"invalid value {text!r}: expected {shape}")
        lines.append(f"#SBATCH {flag}={text}")
    return lines


def _extra_lines(label: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise _fail(label, "extra", "expected a list of sbatch options such as ['--gres=gpu:1']")
    out = []
    for item in value:
        if not isinstance(item, str) or not item.startswith("--"):
            raise _fail(label, "extra", f"invalid line {item!r}: each line must start with '--'")
        if any(c in item for c in "\n\r\0") or any(c.isspace() for c in item):
            raise _fail(
                label, "extra", f"invalid line {item!r}: no whitespace or line breaks allowed"
            )
        if not all(c.isprintable() for c in item):
            raise _fail(label, "extra", f"invalid line {item!r}: non-printable character")
        flag = item.split("=", 1)[0]
        if flag in _RESERVED:
            raise _fail(
                label, "extra", f"{flag} is set by autopot and cannot be given in extra lines"
            )
        out.append(f"#SBATCH {item}")
    return out


# The script body is a constant: it only reads SLURM's variables and the run list.
_BODY = f"""\
set -u
if [ -n "${{SLURM_ARRAY_TASK_ID:-}}" ]; then
  dir=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$SLURM_SUBMIT_DIR/{RUN_LIST}")
else
  dir=$SLURM_SUBMIT_DIR
fi
[ -n "$dir" ] && cd "$dir" || {{ echo "autopot: run directory '$dir' not found" >&2; exit 97; }}
AUTOPOT_RUN_DIR=$PWD
export AUTOPOT_RUN_DIR
rm -f {EXIT_FILE} {PID_FILE}
exec {shlex.join(TASK_COMMAND)} >>{STDOUT} 2>>{STDERR}
"""


#: Packed short tasks (``group_size``): array task k runs lines k*g+1 .. k*g+g of the
#: run list one after the other, each exactly as a job of its own would (its exit code in
#: its own ``.autopot_exit``); g is read from a file beside the list, never spliced in.
#: With ``$AUTOPOT_PYTHON`` set (the engine sets it) and ``AUTOPOT_WARM`` not 0, one
#: interpreter imports numpy/ASE/autopot once and forks each stock-``run.sh`` run
#: (:func:`autopot.executors.warm.group_main`); if it cannot run, the shell loop runs
#: the runs it did not start. Tasks never read the run list as their stdin.
GROUP_FILE = "group_size"
_GROUP_BODY = f"""\
set -u
g=$(cat "$SLURM_SUBMIT_DIR/{GROUP_FILE}")
first=$((SLURM_ARRAY_TASK_ID * g + 1))
warm=
if [ "${{AUTOPOT_WARM:-1}}" != 0 ] && [ -n "${{AUTOPOT_PYTHON:-}}" ]; then
  warm=1
  "$AUTOPOT_PYTHON" -m autopot.executors.warm group "$SLURM_SUBMIT_DIR/{RUN_LIST}" "$first" "$g" </dev/null && exit 0
  echo "autopot: warm group runner failed; the shell runs the runs it did not start" >&2
fi
sed -n "${{first}},$((first + g - 1))p" "$SLURM_SUBMIT_DIR/{RUN_LIST}" | while IFS= read -r dir; do
  (
    cd "$dir" || {{ echo "autopot: run directory '$dir' not found" >&2; exit 97; }}
    [ -n "$warm" ] && [ -e {PID_FILE} ] && exit 0
    AUTOPOT_RUN_DIR=$PWD
    export AUTOPOT_RUN_DIR
    rm -f {EXIT_FILE} {PID_FILE}
    exec {shlex.join(TASK_COMMAND)} </dev/null >>{STDOUT} 2>>{STDERR}
  )
done
exit 0
"""


def batch_script(
    lines: list[str], *, job_name: str, token: str, log_pattern: str, grouped: bool = False
) -> str:
    """The whole batch script: validated option lines, autopot's own lines, constant body."""
    head = [
        "#!/bin/sh",
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --comment=autopot:{token}",
        f"#SBATCH --output={log_pattern}",
        "#SBATCH --export=ALL",
        *[line for line in lines if not line.startswith("#SBATCH --job-name=")],
    ]
    return "\n".join(head) + "\n" + (_GROUP_BODY if grouped else _BODY)


def job_name(lines: list[str], default: str, token: str) -> str:
    """``<job_name option or task>-<token>``: the token makes the job findable by name in
    sacct (jobcomp keeps names, not comments) after an orchestrator crash."""
    for line in lines:
        if line.startswith("#SBATCH --job-name="):
            default = line.split("=", 1)[1]
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", default)[:40]
    return f"{safe}-{token}"
