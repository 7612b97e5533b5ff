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

    def matches(self, run: Any) -> bool:
        value = _lookup(run, self.name)
        if value is _ABSENT:
            return False
        fn = _OPS[self.op]
        try:
            if self.op in ("=", "==", "~"):
                return any(fn(value, v) for v in self.values)
            if self.op == "!=":
                return all(fn(value, v) for v in self.values)
            return fn(value, self.values[0])
        except TypeError:
            return False  # e.g. None > 3: an unset quantity never matches an order


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
            values = tuple(_parse_value(v) for v in raw.split("|"))
        else:
            values = (_parse_value(raw),)
        if name == "state":
            values = tuple(str(v).upper() for v in values)
        out.append(Constraint(name, op, values))
    return out


def select(task_type: Any, where: str | list[str] | None = None, *, limit: int | None = None) -> list[Any]:
    """Runs of one task type matching ``where``, in id order."""
    return list(iter_select(task_type, where, limit=limit))


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
                found = union(found, index.get(v if c.name != "state" else str(v), IITreeSet()))
            ids = found if ids is None else intersection(ids, found)
        elif c.name == "id" and c.op in ("=", "==", ">", ">=", "<", "<=") and all(isinstance(v, int) for v in c.values):
            if c.op in ("=", "=="):
                found = IITreeSet([v for v in c.values if v in task_type.runs])
            else:
                v = c.values[0]
                lo, hi = {">": (v + 1, None), ">=": (v, None), "<": (None, v - 1), "<=": (None, v)}[c.op]
                found = IITreeSet(task_type.runs.keys(lo, hi))
            ids = found if ids is None else intersection(ids, found)
        else:
            rest.append(c)
    if ids is None:
        ids = task_type.runs.keys()
    return ids, rest


def iter_select(task_type: Any, where: str | list[str] | None = None, *, limit: int | None = None) -> Iterator[Any]:
    constraints = parse(where)
    ids, rest = select_ids(task_type, constraints)
    runs = task_type.runs
    n = 0
    for run_id in ids:
        run = runs[run_id]
        if all(c.matches(run) for c in rest):
            yield run
            n += 1
            if limit is not None and n >= limit:
                return


def count(task_type: Any, where: str | list[str] | None = None) -> int:
    """Number of matching runs; index-only when every constraint is indexed."""
    constraints = parse(where)
    ids, rest = select_ids(task_type, constraints)
    if not rest:
        return len(ids)
    return sum(1 for _ in iter_select(task_type, where))
