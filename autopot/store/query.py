"""BlackDynamite-style constraints: ``"state = FINISHED, grade > 10, run_name = x"``.

Constraints are joined by commas (AND). A name is a run attribute (state, id, run_name,
exit_code, host, ...), a job parameter, a run parameter or a pushed quantity, looked up
in that order; ``job.NAME``/``run.NAME``/``q.NAME`` force one. Operators: ``= == != < <=
> >= ~`` (``~`` is a glob match on the text). ``a|b`` on the right of ``=``/``!=`` means
any of. Equality on ``state``, ``run_name`` and ``id`` ranges use the BTree indexes, and
every operator on a parameter or a quantity uses the task type's value index
(:mod:`autopot.store.value_index`), so such a query over 10^5 runs reads a few buckets.
The index gives exactly the runs a scan would (it is tested against one); a database
written before it existed, opened read-only, is scanned.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from autopot.errors import QueryError
from autopot.store.value_index import scalar

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
        return self.matches_value(_scalar(value, self.name))

    def matches_value(self, value: Any) -> bool:
        """The comparison itself, on a run's (scalar) value: shared by scan and index."""
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
    ok, plain = scalar(value)
    if ok:
        return plain
    raise QueryError(
        f"{name!r} is an array of shape {tuple(value.shape)}; constraints compare scalars, "
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
    use_index: bool = True,
) -> list[Any]:
    """Runs of one task type matching ``where``, in id order.

    With ``strict`` (what the CLI uses), a name that is neither a run attribute, a
    declared parameter, nor a quantity of any run looked at raises a QueryError instead
    of silently matching nothing (``stat = FINISHED``). ``use_index=False`` reads every
    candidate run instead of the value index (the reference the index is tested against).
    """
    return list(iter_select(task_type, where, limit=limit, strict=strict, use_index=use_index))


def select_ids(
    task_type: Any, constraints: list[Constraint], *, use_index: bool = True
) -> tuple[Any, list[Constraint]]:
    """Use the indexes for what they can answer; return (candidate ids, remaining constraints)."""
    ids, rest, _, error = _plan(task_type, constraints, strict=False, use_index=use_index)
    if error is not None:
        raise error[1]
    return ids, rest


def _plan(
    task_type: Any, constraints: list[Constraint], *, strict: bool, use_index: bool
) -> tuple[Any, list[Constraint], set[str], tuple[int, QueryError] | None]:
    """(candidate ids, constraints left to check on each of them, names the scan must
    find, the error a scan would raise and at which run id).

    The state/run-name/id indexes narrow first. Then the value index answers parameter
    and quantity constraints (:mod:`autopot.store.value_index`): runs whose values are all
    indexed are decided without being read; the few with unindexed values (dicts, NaN,
    arrays) are read and checked as the scan checks them, in the scan's order, so even
    "this is an array" errors come from the same run. Without a value index (a database
    from before it, opened read-only), the scan does everything itself.
    """
    base, rest = _base_ids(task_type, constraints)
    index = getattr(task_type, "query_index", None) if use_index else None
    if index is None:
        unresolved = _unresolved_names(task_type, rest) if strict else set()
        return (task_type.runs.keys() if base is None else base), rest, unresolved, None
    from BTrees.IIBTree import IISet, difference, intersection, multiunion, union

    from autopot.store.model import RUN_FIELDS

    parts = [index.part(c) for c in rest if c.name not in RUN_FIELDS]
    if not parts:
        return (task_type.runs.keys() if base is None else base), rest, set(), None
    ids = base  # runs that may match every constraint (values indexed or not)
    reached: list[Any] = []  # runs with arrays a scan would compare (it raises there)
    for part in parts:
        if part.arrays:
            reached.append(part.arrays if ids is None else intersection(part.arrays, ids))
        found = union(part.exact, part.unindexed)
        ids = found if ids is None else intersection(ids, found)
    unsure = intersection(ids, multiunion([p.unindexed for p in parts]))
    runs = task_type.runs
    error: tuple[int, QueryError] | None = None
    good = []
    for run_id in multiunion([unsure, *reached]):
        run = runs[run_id]
        try:
            if all(c.matches(run) for c in rest):
                good.append(run_id)
        except QueryError as exc:
            error = (run_id, exc)  # the first a scan would meet: ids come in order
            break
    ids = union(difference(ids, unsure), IISet(good))
    if strict and error is None:
        _check_names(task_type, index, rest, base)
    return ids, [c for c in rest if c.name in RUN_FIELDS], set(), error


def _base_ids(task_type: Any, constraints: list[Constraint]) -> tuple[Any, list[Constraint]]:
    """What the state, run-name and id indexes answer: (ids or None for all, the rest)."""
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
    return ids, rest


def iter_select(
    task_type: Any,
    where: str | list[str] | None = None,
    *,
    limit: int | None = None,
    strict: bool = False,
    use_index: bool = True,
) -> Iterator[Any]:
    """:func:`select`, one run at a time."""
    constraints = parse(where)
    plan = _plan(task_type, constraints, strict=strict, use_index=use_index)
    yield from _scan(task_type, *plan, limit)


def _scan(
    task_type: Any,
    ids: Any,
    rest: list[Constraint],
    unresolved: set[str],
    error: tuple[int, QueryError] | None,
    limit: int | None,
) -> Iterator[Any]:
    """Check ``rest`` on each candidate; raise ``error`` where the scan would meet it."""
    runs = task_type.runs
    n = 0
    scanned = 0
    for run_id in ids:
        if error is not None and run_id > error[0]:
            raise error[1]
        run = runs[run_id]
        scanned += 1
        if unresolved:
            unresolved -= {name for name in unresolved if _lookup(run, name) is not _ABSENT}
        if all(c.matches(run) for c in rest):
            yield run
            n += 1
            if limit is not None and n >= limit:
                return
    if error is not None:
        raise error[1]
    if unresolved and scanned:
        _unknown_name(task_type, sorted(unresolved)[0], scanned)


def _unknown_name(task_type: Any, name: str, scanned: int) -> None:
    schema = getattr(task_type, "schema", {}) or {}
    known = [*schema.get("job", {}), *schema.get("run", {})]
    raise QueryError(
        f"unknown name {name!r}: not a run attribute, a parameter of {task_type.name} "
        f"({', '.join(known) or 'none'}) nor a quantity of the {scanned} run(s) looked at",
        field="where",
    )


def _check_names(task_type: Any, index: Any, constraints: list[Constraint], base: Any) -> None:
    """The scan's unknown-name check, answered by the value index: a name no run among
    ``base`` (all runs if None) has — in any namespace it resolves to — is an error."""
    from BTrees.IIBTree import intersection

    for name in sorted(_unresolved_names(task_type, constraints)):
        present = index.present(name)
        if present if base is None else intersection(present, base):
            continue
        scanned = len(task_type.runs) if base is None else len(base)
        if scanned:
            _unknown_name(task_type, name, scanned)
        return


def _unresolved_names(task_type: Any, constraints: list[Constraint]) -> set[str]:
    """Names of constraints that the schema does not declare (quantities, or typos)."""
    from autopot.store.model import RUN_FIELDS

    schema = getattr(task_type, "schema", {}) or {}
    declared = {*schema.get("job", {}), *schema.get("run", {})}
    declared |= {f"job.{k}" for k in schema.get("job", {})} | {
        f"run.{k}" for k in schema.get("run", {})
    }
    return {c.name for c in constraints if c.name not in RUN_FIELDS and c.name not in declared}


def count(
    task_type: Any,
    where: str | list[str] | None = None,
    *,
    strict: bool = False,
    use_index: bool = True,
) -> int:
    """Number of matching runs; index-only when every constraint is indexed."""
    ids, rest, unresolved, error = _plan(
        task_type, parse(where), strict=strict, use_index=use_index
    )
    if not rest and not unresolved and error is None:
        return len(ids)
    return sum(1 for _ in _scan(task_type, ids, rest, unresolved, error, None))
