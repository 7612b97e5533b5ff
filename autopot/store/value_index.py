"""Value indexes of parameters and scalar quantities, so ``--where`` on them reads buckets.

One :class:`QueryIndex` per task type holds a :class:`FieldIndex` per (namespace, name):
``job`` parameters and ``run`` parameters (indexed when a run is created; they never
change afterwards) and ``q`` quantities (indexed by :meth:`Run.push`). Both happen in the
transaction that changes the run, so an abort rolls the index back with it.

A field index keeps three BTrees:

* ``values``: key → run id, or an ``IITreeSet`` of run ids once a value repeats;
* ``present``: every run that has the name (what ``!=`` and "unknown name" need);
* ``unindexed``: runs whose value is not a scalar (arrays, dicts, lists, NaN, long
  text). A query reads these runs and compares as a scan does, so its answer stays exact;
* ``arrays``: those of them holding arrays of several elements, which a comparison
  refuses (QueryError): a query meets them in the order a scan would, so it raises when
  (and only when) a scan would, at the same run.

Keys order any mix of types: ``(0,)`` for None, ``(1, number, type tag)`` for bool, int
and float (equal numbers sit together, as ``1 == 1.0 == True`` in a scan; the tag keeps
their ``str()`` for ``~``), ``(2, text)`` for strings.

Why BTrees of our own rather than zope.index / zc.catalog (measured needs, not taste):

* their field indexes keep one persistent TreeSet per distinct value; ``cfg_fname`` and
  ``energy`` are unique per run, so that is one more database record per run and field
  (bytes per run, commit time). Here a lone run id stays inline in its bucket;
* they need every value of a field to be mutually orderable, while quantities are
  untyped (a name may be a float in one run, None or text in another), and the query
  language compares text with text and numbers with numbers (``cfg_fname = 1``);
* the query semantics (strict ``<``, ``!=`` over present values only, non-scalar values
  still answerable, job > run > quantity precedence of a bare name) need a translation
  layer on top of any library anyway; ``FieldIndex.apply`` only takes inclusive ranges;
* BTrees already come with ZODB, and their conflict resolution merges concurrent inserts
  by task processes pushing through ZEO, as for the state index.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

from BTrees.IIBTree import IISet, IITreeSet, difference, multiunion, union
from BTrees.OOBTree import OOBTree
from persistent import Persistent

log = logging.getLogger(__name__)

#: namespaces, in the precedence a bare name is looked up (after run attributes)
NAMESPACES = ("job", "run", "q")
_NONE, _NUM, _STR, _END = 0, 1, 2, 3
_BOOL, _INT, _FLOAT, _NEG_ZERO, _TAG_MAX = 0, 1, 2, 3, 9
#: longer text is left to the scan: keys stay small and buckets cheap to rewrite
MAX_TEXT = 256
_ORDER = ("<", "<=", ">", ">=")
#: a name a run does not have (before its first push, or never)
ABSENT: Any = object()


class ConstraintLike(Protocol):
    """What the index needs of :class:`autopot.store.query.Constraint`."""

    @property
    def name(self) -> str: ...

    @property
    def op(self) -> str: ...

    @property
    def values(self) -> tuple[Any, ...]: ...

    @property
    def texts(self) -> tuple[str, ...]: ...

    def matches_value(self, value: Any) -> bool: ...


def scalar(value: Any) -> tuple[bool, Any]:
    """(True, plain value) for what a constraint compares as a scalar; (False, value) for an
    array of more than one element. The one definition the query and the index share."""
    shape = getattr(value, "shape", None)
    if shape is None:
        return True, value
    if getattr(value, "size", 0) == 1:
        return True, (value.reshape(()).item() if hasattr(value, "reshape") else value.item())
    return False, value


def key_of(value: Any) -> tuple[Any, ...] | None:
    """The index key of a stored value, or None when only a scan can compare it.

    Arrays (even of one element) are not indexed: they are mutable, so the key they had
    when indexed could not be found again when the value is replaced.
    """
    kind = type(value)
    if value is None:
        return (_NONE,)
    if kind is bool:
        return (_NUM, value, _BOOL)
    if kind is int:
        return (_NUM, value, _INT)
    if kind is float:
        if value != value:  # NaN has no place in an order
            return None
        if value == 0.0 and math.copysign(1.0, value) < 0:  # -0.0 == 0.0, str differs
            return (_NUM, value, _NEG_ZERO)
        return (_NUM, value, _FLOAT)
    if kind is str:
        return (_STR, value) if len(value) <= MAX_TEXT else None
    try:  # an immutable numpy scalar compares as its Python value
        if getattr(value, "shape", None) != () or hasattr(value, "__setitem__"):
            return None
        ok, plain = scalar(value)
    except Exception:  # noqa: BLE001 - an odd object is left to the scan
        return None
    if ok and type(plain) in (bool, int, float, str, type(None)):
        return key_of(plain)
    return None


def _key_value(key: tuple[Any, ...]) -> Any:
    return None if key[0] == _NONE else key[1]


def _is_number(value: Any) -> bool:
    return type(value) in (bool, int, float) and value == value


class Part(NamedTuple):
    """What the index answers for one constraint (sets of run ids)."""

    exact: Any  # runs whose indexed (scalar) value satisfies it
    unindexed: Any  # runs whose value only the run itself can tell: evaluate those
    arrays: Any  # among those, arrays of several elements (a comparison refuses them)


def _translatable(c: ConstraintLike) -> bool:
    """Operands of the types :func:`autopot.store.query.parse` produces."""
    return all(type(x) in (str, bool, int, float, type(None)) for x in (*c.values, *c.texts))


def _refused(value: Any) -> bool:
    """A value a constraint refuses to compare (an array of several elements)."""
    try:
        return not scalar(value)[0]
    except Exception:  # noqa: BLE001 - the scan meets the same object: evaluate it in order
        return True


class FieldIndex(Persistent):
    """Runs by the value of one name in one namespace (see the module docstring)."""

    def __init__(self) -> None:
        self.values = OOBTree()
        self.present = IITreeSet()
        self.unindexed = IITreeSet()
        self.arrays = IITreeSet()

    def add(self, run_id: int, value: Any) -> None:
        self.present.insert(run_id)
        key = key_of(value)
        if key is None:
            self.unindexed.insert(run_id)
            if _refused(value):
                self.arrays.insert(run_id)
            return
        held = self.values.get(key)
        if held is None:
            self.values[key] = run_id
        elif isinstance(held, int):
            if held != run_id:
                self.values[key] = IITreeSet((held, run_id))
        else:
            held.insert(run_id)

    def remove(self, run_id: int, value: Any) -> None:
        _discard(self.present, run_id)
        key = key_of(value)
        if key is None:
            _discard(self.unindexed, run_id)
            _discard(self.arrays, run_id)
            return
        held = self.values.get(key)
        if isinstance(held, int) and held == run_id:
            del self.values[key]
        elif held is not None and not isinstance(held, int) and run_id in held:
            held.remove(run_id)
            if not held:
                del self.values[key]
        else:  # would mean the index missed a change: say so, never break the write
            log.warning("value index: run %d was not indexed under %r", run_id, key)

    # ---------------------------------------------------------------- reading
    def _items(self, lo: Any, hi: Any, exlo: bool = False, exhi: bool = False) -> Iterator[Any]:
        return iter(self.values.items(lo, hi, excludemin=exlo, excludemax=exhi))

    def _has_kind(self, lo: int, hi: int) -> bool:
        """Any key of rank lo..hi-1 (cheap: one descent)."""
        for _ in self.values.keys((lo,), (hi,), excludemax=True):
            return True
        return False

    def part(self, c: ConstraintLike) -> Part:
        """What this field says about ``c``: the exact answer among indexed values, the
        runs only the run itself can tell, and those of them holding arrays."""
        if c.op in ("=", "==") and _translatable(c):
            hits = [v for k, v in self._equal_items(c) if c.matches_value(_key_value(k))]
            exact: Any = multiunion(hits)
        elif c.op == "!=" and _translatable(c):
            equal = [v for k, v in self._equal_items(c) if not c.matches_value(_key_value(k))]
            exact = difference(difference(self.present, self.unindexed), multiunion(equal))
        elif c.op in _ORDER and _translatable(c):
            exact = multiunion([v for _, v in self._order_items(c)])
        elif c.op == "~" and _translatable(c):
            keys = self._glob_items(c)
            exact = multiunion([v for k, v in keys if c.matches_value(_key_value(k))])
        else:  # nothing this index can translate: every run that has the name is read
            return Part(IISet(), self.present, self.arrays)
        return Part(exact, self.unindexed, self.arrays)

    def _equal_items(self, c: ConstraintLike) -> Iterator[Any]:
        """Every key that could equal one of the operands (checked exactly by the caller)."""
        for x in c.texts or c.values:
            if isinstance(x, str) and (_STR, x) in self.values:
                yield (_STR, x), self.values[(_STR, x)]
        for x in c.values:
            if x is None:
                if (_NONE,) in self.values:
                    yield (_NONE,), self.values[(_NONE,)]
            elif _is_number(x):
                yield from self._items((_NUM, x), (_NUM, x, _TAG_MAX))

    def _order_items(self, c: ConstraintLike) -> Iterator[Any]:
        """Text compares with the text as written, numbers with the number; None with
        nothing (a scan's TypeError). The bounds are exact: no key needs checking."""
        text = (c.texts or c.values)[0]
        if isinstance(text, str):
            yield from self._items(*_bounds(c.op, _STR, (text,)))
        number = c.values[0]
        if _is_number(number):
            yield from self._items(*_bounds(c.op, _NUM, (number,), (number, _TAG_MAX)))

    def _glob_items(self, c: ConstraintLike) -> Iterator[Any]:
        """Keys a glob may match: text keys sharing the pattern's literal prefix, and every
        None/number key (their ``str()`` is matched by the caller)."""
        for pattern in sorted({str(x) for x in (c.texts or c.values)}):
            prefix = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
            if prefix and ord(prefix[-1]) < 0x10FFFF:
                above = prefix[:-1] + chr(ord(prefix[-1]) + 1)
                yield from self._items((_STR, prefix), (_STR, above), exhi=True)
            else:
                yield from self._items((_STR,), (_END,), exhi=True)
        if self._has_kind(_NONE, _STR):
            yield from self._items((_NONE,), (_STR,), exhi=True)


def _bounds(
    op: str, rank: int, at: tuple[Any, ...], at_end: tuple[Any, ...] | None = None
) -> tuple[Any, Any, bool, bool]:
    """(min, max, exclude min, exclude max) of ``op`` against one operand within ``rank``.

    ``(rank, x)`` sorts before every ``(rank, x, tag)`` and ``(rank, x, _TAG_MAX)`` after
    them, so the numbers equal to x are in or out together.
    """
    low, high = (rank, *at), (rank, *(at_end or at))
    return {
        "<": ((rank,), low, False, True),
        "<=": ((rank,), high, False, False),
        ">": (high, (rank + 1,), True, True),
        ">=": (low, (rank + 1,), False, True),
    }[op]


def _discard(ids: Any, run_id: int) -> None:
    if run_id in ids:
        ids.remove(run_id)


class QueryIndex(Persistent):
    """The value indexes of one task type: (namespace, name) → :class:`FieldIndex`."""

    def __init__(self) -> None:
        self.fields = OOBTree()

    def field(self, namespace: str, name: str) -> FieldIndex | None:
        index: FieldIndex | None = self.fields.get((namespace, name))
        return index

    def _field(self, namespace: str, name: str) -> FieldIndex:
        index = self.field(namespace, name)
        if index is None:
            index = self.fields[(namespace, name)] = FieldIndex()
        return index

    def add_run(self, run_id: int, job_params: dict[str, Any], run_params: dict[str, Any]) -> None:
        """Index a new run's job and run parameters (they never change afterwards)."""
        for namespace, params in (("job", job_params), ("run", run_params)):
            for name, value in params.items():
                self._field(namespace, name).add(run_id, value)

    def change(self, namespace: str, name: str, run_id: int, old: Any, new: Any) -> None:
        """Move a run from ``old`` to ``new``; ``ABSENT`` for a name it did not/does not have."""
        index = self._field(namespace, name) if new is not ABSENT else self.field(namespace, name)
        if index is None:
            return
        if old is not ABSENT:
            if new is not ABSENT and _same_key(old, new):
                return
            index.remove(run_id, old)
        if new is not ABSENT:
            index.add(run_id, new)

    def fields_for(self, name: str) -> list[tuple[str, FieldIndex]]:
        """The field indexes a constraint name reads, in lookup precedence."""
        prefix, _, rest = name.partition(".")
        if rest and prefix in NAMESPACES:
            index = self.field(prefix, rest)
            return [] if index is None else [(prefix, index)]
        found = [(ns, self.field(ns, name)) for ns in NAMESPACES]
        return [(ns, index) for ns, index in found if index is not None]

    def part(self, c: ConstraintLike) -> Part:
        """:meth:`FieldIndex.part` for a constraint name, over the namespaces it reads.

        A bare name that several namespaces hold resolves per run as a scan does: the job
        parameter if the run's job has it, else the run parameter, else the quantity.
        """
        fields = self.fields_for(c.name)
        if len(fields) == 1:
            return fields[0][1].part(c)
        exact: Any = IISet()
        unindexed: Any = IISet()
        arrays: Any = IISet()
        shadow: Any = None  # runs whose value comes from an earlier namespace
        for _, index in fields:
            part = index.part(c)
            if shadow is None:
                exact, unindexed = part.exact, part.unindexed
            else:
                exact = union(exact, difference(part.exact, shadow))
                unindexed = union(unindexed, difference(part.unindexed, shadow))
            arrays = union(arrays, part.arrays)
            shadow = index.present if shadow is None else union(shadow, index.present)
        return Part(exact, unindexed, arrays)

    def present(self, name: str) -> Any:
        """Runs that have ``name`` at all (in any namespace it resolves to)."""
        fields = self.fields_for(name)
        if len(fields) == 1:
            return fields[0][1].present
        return multiunion([index.present for _, index in fields])


def _same_key(old: Any, new: Any) -> bool:
    key = key_of(old)
    return key is not None and key_of(new) == key


# -------------------------------------------------------------------- building


def task_types_without_index(root: Any) -> list[Any]:
    """Task types of a database written before the value index existed."""
    return [t for t in root.task_types.values() if getattr(t, "query_index", None) is None]


def build(root: Any) -> int:
    """Index every run of the task types that have no value index; returns runs indexed.

    Runs in one transaction (the caller's): nothing stored is changed but the task types,
    which gain the index. Every run read is declared current (``readCurrent``), so a run
    changed by another client before this commits makes the build retry rather than
    miss that change.
    """
    n = 0
    for task_type in task_types_without_index(root):
        index = QueryIndex()
        jar = task_type._p_jar
        for run_id, run in task_type.runs.items():
            if jar is not None:
                jar.readCurrent(run)
            index.add_run(run_id, run.job.params, run.params)
            for name, value in run.quantities.items():
                index.change("q", name, run_id, ABSENT, value)
            n += 1
        task_type.query_index = index
    return n
