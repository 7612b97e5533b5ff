"""A run's outcome as a file in its run directory: written first, ingested exactly once.

Why a file first: a task that finished computing (hours of VASP) must not lose its
result because the database was unreachable at the moment it wanted to commit (server
restarting, disk full, a compute node with no route to the server at all). So the task
writes everything it would commit — state, cause, the quantities it has not committed
yet (numpy arrays included), the outputs it marked, the manifest of its run directory —
atomically into ``.autopot_outcome.json`` and only then tries the database. Whoever can
reach the database ingests it: the task itself when it can, otherwise the orchestrator
when it sees the process or job end, or when it restarts.

Exactly once: each outcome file carries a random ``key``; ingesting stores the key on
the run in the same transaction, and an outcome whose key the run already holds is a
no-op. A task and the orchestrator racing to ingest the same file conflict in ZODB, and
the retried loser sees the key.

The format is JSON (readable with ``cat``, no code execution on reading); arrays are
stored as base64 of their bytes with dtype and shape, so they come back bit-identical.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from autopot.atomic import atomic_write_text
from autopot.store.states import TERMINAL, State

log = logging.getLogger(__name__)

OUTCOME_FILE = ".autopot_outcome.json"
FORMAT = 1


def _encode(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {
            "__ndarray__": base64.b64encode(data.tobytes()).decode("ascii"),
            "dtype": data.dtype.str,
            "shape": list(data.shape),
        }
    if isinstance(value, np.generic):
        return {"__npscalar__": _encode(np.asarray(value))}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not (set(value) & _TAGS):
            return {k: _encode(v) for k, v in value.items()}
        return {"__items__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in an outcome file")


_TAGS = {"__ndarray__", "__npscalar__", "__tuple__", "__items__"}


def _decode(value: Any) -> Any:
    import numpy as np

    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        raw = base64.b64decode(value["__ndarray__"])
        return np.frombuffer(raw, dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
    if "__npscalar__" in value:
        return _decode(value["__npscalar__"])[()]
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if "__items__" in value:
        return {_decode(k): _decode(v) for k, v in value["__items__"]}
    return {k: _decode(v) for k, v in value.items()}


def new_outcome(
    state: State | str,
    *,
    cause: str = "",
    pushes: list[tuple[str, Any, int | None]] | None = None,
    outputs: list[str] | None = None,
    manifest: dict[str, tuple[str, int]] | None = None,
    host: str = "",
) -> dict[str, Any]:
    """An outcome as plain data (what :func:`write_outcome` stores)."""
    return {
        "format": FORMAT,
        "key": uuid.uuid4().hex,
        "state": State(state).value,
        "cause": cause,
        "pushes": [[name, value, step] for name, value, step in (pushes or [])],
        "outputs": list(outputs or []),
        "manifest": {k: list(v) for k, v in (manifest or {}).items()},
        "host": host,
        "time": time.time(),
    }


def write_outcome(run_dir: Path, outcome: dict[str, Any]) -> Path:
    """Write the outcome atomically (a reader sees all of it or none of it)."""
    path = Path(run_dir) / OUTCOME_FILE
    atomic_write_text(path, json.dumps(_encode(outcome)))
    return path


def read_outcome(run_dir: Path) -> dict[str, Any] | None:
    """The outcome a task left in ``run_dir``; None if there is none.

    An unreadable file (impossible with atomic writes, but a user may have edited it) is
    logged and treated as absent: the run is then settled from its exit status.
    """
    path = Path(run_dir) / OUTCOME_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("%s: cannot read the outcome file: %s", path, exc.strerror or exc)
        return None
    try:
        data: dict[str, Any] = _decode(json.loads(text))
        State(data["state"])
        str(data["key"])
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("%s: malformed outcome file ignored: %s", path, exc)
        return None
    return data


def remove_outcome(run_dir: Path) -> None:
    """Before a (re)submission: an outcome of an earlier attempt must not settle this one."""
    (Path(run_dir) / OUTCOME_FILE).unlink(missing_ok=True)


def ingested(run: Any, outcome: dict[str, Any]) -> bool:
    """Whether ``run`` already holds this outcome."""
    return bool(run.extra.get("outcome_key") == outcome["key"])


def apply_outcome(
    run: Any, outcome: dict[str, Any], *, exit_code: int | None = None, by: str = "orchestrator"
) -> bool:
    """Ingest ``outcome`` into ``run`` inside the caller's transaction; idempotent.

    Returns True when the run changed. A run that already ended (FINISHED, or FAILED or
    CANCELLED by someone else) keeps its state; the key is still recorded so the file is
    never ingested again. ``by`` (``task`` or ``orchestrator``) is recorded as
    ``extra["outcome_by"]``: whether the result came through a live connection.
    """
    if ingested(run, outcome):
        return False
    extra = {**run.extra, "outcome_key": outcome["key"], "outcome_by": by}
    if run.state in TERMINAL:
        run.extra = extra
        return False
    for name, value, step in outcome.get("pushes", []):
        run.push(name, value, step)
    if outcome.get("manifest"):
        run.manifest = {k: (str(v[0]), int(v[1])) for k, v in outcome["manifest"].items()}
    if outcome.get("outputs"):
        extra["outputs"] = list(outcome["outputs"])
    run.extra = extra
    fields: dict[str, Any] = {}
    if outcome.get("host") and not run.host:
        fields["host"] = outcome["host"]
    if exit_code is not None and run.exit_code is None:
        fields["exit_code"] = exit_code
    run.set_state(outcome["state"], outcome.get("cause", ""), **fields)
    ended = outcome.get("time")
    if (  # ingested later than the task wrote it: the run ended when the task did
        by != "task"
        and isinstance(ended, int | float)
        and run.ended is not None
        and (run.started or 0.0) <= ended < run.ended
    ):
        run.ended = float(ended)
    return True
