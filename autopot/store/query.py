"""BlackDynamite-style constraints: ``"state = FINISHED, grade > 10, run_name = x"``.

Constraints are joined by commas (AND). A name is a run attribute (state, id, run_name,
exit_code, host, ...), a job parameter, a run parameter or a pushed quantity, looked up
in that order; ``job.NAME``/``run.NAME``/``q.NAME`` force one. Operators: ``= == != < <=
> >= ~`` (``~`` is a glob match on the text). ``a|b`` on the right of ``=``/``!=`` means
any of. Equality on ``state``, ``run_name`` and ``id`` ranges use the BTree indexes, so
an indexed query over 10^5 runs reads a few buckets.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from autopot.errors import QueryError

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "~": lambda a, b: fnmatch.fnmatchcase(str(a), str(b)),
}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(==|!=|<=|>=|=|<|>|~)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Constraint:
    name: str
    op: str
    values: tuple[Any, ...]
    texts: tuple[str, ...] = ()  # the values as written, for text-valued fields

    def matches(self, run: Any) -> bool:
        value = _lookup(run, self.name)
        if value is _ABSENT:
            return False
        value = _scalar(value, self.name)
        values = self.values
        if isinstance(value, str) and self.texts:
            values = self.texts  # cfg_fname = 1 compares text with text
        fn = _OPS[self.op]
        try:
            if self.op in ("=", "==", "~"):
                return any(fn(value, v) for v in values)
            if self.op == "!=":
                return all(fn(value, v) for v in values)
            return bool(fn(value, values[0]))
        except TypeError:
            return False  # e.g. None > 3: an unset quantity never matches an order


def _scalar(value: Any, name: str) -> Any:
    """numpy scalars and 1-element arrays compare as numbers; larger arrays are refused."""
    shape = getattr(value, "shape", None)
    if shape is None:
        return value
    if getattr(value, "size", 0) == 1:
        return value.reshape(()).item() if hasattr(value, "reshape") else value.item()
    raise QueryError(
        f"{name!r} is an array of shape {tuple(shape)}; constraints compare scalars, "
        "filter arrays in Python",
        field="where",
    )


_ABSENT = object()


def _lookup(run: Any, name: str) -> Any:
    prefix, _, rest = name.partition(".")
    if rest and prefix in ("job", "run", "q"):
        source = {"job": run.job.params, "run": run.params, "q": run.quantities}[prefix]
        return source.get(rest, _ABSENT)
    value = run.get(name, _ABSENT)
    if hasattr(value, "value") and type(value).__name__ == "State":
        return value.value
    return value


def _parse_value(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


#: run attributes that are always text (values are not converted to numbers)
_TEXT_FIELDS = frozenset(
    {"run_name", "host", "executor", "executor_id", "cause", "directory", "task"}
)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _split(where: str) -> list[str]:
    """Split on commas outside quotes."""
    parts, buf, quote = [], [], ""
    for ch in where:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            buf.append(ch)
        elif ch == ",":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if quote:
        raise QueryError(f"unterminated quote in {where!r}", field="where")
    parts.append("".join(buf))
    return [p for p in (p.strip() for p in parts) if p]


def parse(where: str | list[str] | None) -> list[Constraint]:
    """Parse constraints; raises QueryError naming the bad piece."""
    if not where:
        return []
    pieces = _split(where) if isinstance(where, str) else [p for w in where for p in _split(w)]
    out = []
    for piece in pieces:
        m = _CONSTRAINT.match(piece)
        if not m or not m.group(3):
            raise QueryError(
                f"cannot parse constraint {piece!r}; expected NAME OP VALUE with OP in = != < <= > >= ~",
                field="where",
            )
        name, op, raw = m.groups()
        if op in ("=", "==", "!=", "~") and "|" in raw and raw[0] not in "'\"":
            texts = tuple(_unquote(v) for v in raw.split("|"))
            values = tuple(_parse_value(v) for v in raw.split("|"))
        else:
            texts = (_unquote(raw),)
            values = (_parse_value(raw),)
        if name == "state":
            from autopot.store.states import State

            if op in ("=", "==", "!="):
                bad = [t for t in texts if t.upper() not in State.__members__]
                if bad:  # a typo would silently match nothing
                    raise QueryError(
                        f"unknown state {bad[0]!r} in {piece.strip()!r}; use one of {', '.join(State.__members__)}",
                        field="where",
                    )
                values = tuple(t.upper() for t in texts)
            else:
                values = tuple(t.upper() for t in texts)
            texts = values
        elif name in _TEXT_FIELDS:
            values = texts  # run_name = 2024 is the text "2024"
        out.append(Constraint(name, op, values, texts))
    return out


def select(
    task_type: Any,
    where: str | list[str] | None = None,
    *,
    limit: int | None = None,
    strict: bool = False,
) -> list[Any]:
    """Runs of one task type matching ``where``, in id order.

    With ``strict`` (what the CLI uses), a name that is neither a run attribute, a
    declared parameter, nor a quantity of any run looked at raises a QueryError instead
    of silently matching nothing (``stat = FINISHED``).
    """
    return list(iter_select(task_type, where, limit=limit, strict=strict))


def select_ids(task_type: Any, constraints: list[Constraint]) -> tuple[Any, list[Constraint]]:
    """Use the indexes for what they can answer; return (candidate ids, remaining constraints)."""
    from BTrees.IIBTree import IITreeSet, intersection, union

    ids: Any = None
    rest: list[Constraint] = []
    for c in constraints:
        index = {"state": task_type.by_state, "run_name": task_type.by_run_name}.get(c.name)
        if index is not None and c.op in ("=", "=="):
            found = None
            for v in c.values:
                found = union(found, index.get(str(v), IITreeSet()))
            ids = found if ids is None else intersection(ids, found)
        elif (
            c.name == "id"
            and c.op in ("=", "==", ">", ">=", "<", "<=")
            and all(isinstance(v, int) for v in c.values)
        ):
            if c.op in ("=", "=="):
                found = IITreeSet([v for v in c.values if v in task_type.runs])
            else:
                v = c.values[0]
                lo, hi = {">": (v + 1, None), ">=": (v, None), "<": (None, v - 1), "<=": (None, v)}[
                    c.op
                ]
                found = IITreeSet(task_type.runs.keys(lo, hi))
            ids = found if ids is None else intersection(ids, found)
        else:
            rest.append(c)
    if ids is None:
        ids = task_type.runs.keys()
    return ids, rest


def iter_select(
    task_type: Any,
    where: str | list[str] | None = None,
    *,
    limit: int | None = None,
    strict: bool = False,
) -> Iterator[Any]:
    constraints = parse(where)
    ids, rest = select_ids(task_type, constraints)
    unresolved = _unresolved_names(task_type, rest) if strict else set()
    runs = task_type.runs
    n = 0
    scanned = 0
    for run_id in ids:
        run = runs[run_id]
        scanned += 1
        if unresolved:
            unresolved -= {name for name in unresolved if _lookup(run, name) is not _ABSENT}
        if all(c.matches(run) for c in rest):
            yield run
            n += 1
            if limit is not None and n >= limit:
                return
    if unresolved and scanned:
        name = sorted(unresolved)[0]
        schema = getattr(task_type, "schema", {}) or {}
        known = [*schema.get("job", {}), *schema.get("run", {})]
        raise QueryError(
            f"unknown name {name!r}: not a run attribute, a parameter of {task_type.name} "
            f"({', '.join(known) or 'none'}) nor a quantity of the {scanned} run(s) looked at",
            field="where",
        )


def _unresolved_names(task_type: Any, constraints: list[Constraint]) -> set[str]:
    """Names of constraints that the schema does not declare (quantities, or typos)."""
    from autopot.store.model import RUN_FIELDS

    schema = getattr(task_type, "schema", {}) or {}
    declared = {*schema.get("job", {}), *schema.get("run", {})}
    declared |= {f"job.{k}" for k in schema.get("job", {})} | {
        f"run.{k}" for k in schema.get("run", {})
    }
    return {c.name for c in constraints if c.name not in RUN_FIELDS and c.name not in declared}


def count(task_type: Any, where: str | list[str] | None = None, *, strict: bool = False) -> int:
    """Number of matching runs; index-only when every constraint is indexed."""
    constraints = parse(where)
    ids, rest = select_ids(task_type, constraints)
    if not rest:
        return len(ids)
    return sum(1 for _ in iter_select(task_type, where, strict=strict))
