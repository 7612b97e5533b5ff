"""A consistent copy of a workflow's database, taken while it may be in use.

Why not ``cp autopot.fs``: the orchestrator (through its ZEO server) may append a
transaction while the file is read, and a byte copy can end in the middle of one. We
copy *transactions* instead (ZODB's ``copyTransactionsFrom``). The source is the
FileStorage file itself, read by ZODB's ``FileIterator`` — it takes no lock, stops at the
file's size when it started and at a transaction still being written (status ``c``) —
so a live ZEO server is neither disturbed nor needed; 35x faster than iterating through
ZEO's protocol. Only when the file is not on this machine (``$AUTOPOT_DB_ADDRESS`` names
a remote server) do we iterate through the server. Every copied transaction is whole, so
the copy is the database exactly as of its last transaction. The copy is then packed
(old object revisions dropped: a run keeps its own state history), which also checks
that every record in it can be read.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autopot.errors import DamagedDataError, StoreError


@dataclass
class SnapshotInfo:
    """What the snapshot holds: its last transaction and the runs in it."""

    path: Path
    last_tid: str  # hex of the last copied transaction id
    last_commit: float  # its time (seconds since the epoch)
    transactions: int
    packed: bool
    runs: dict[str, dict[str, int]] = field(default_factory=dict)  # task -> state -> count
    workflow_runs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "last_tid": self.last_tid,
            "last_commit": self.last_commit,
            "transactions": self.transactions,
            "packed": self.packed,
            "runs": self.runs,
            "workflow_runs": self.workflow_runs,
        }


def snapshot_database(
    workflow_dir: str | Path, dest: str | Path, *, pack: bool = True
) -> SnapshotInfo:
    """Copy the database of ``workflow_dir`` into the new FileStorage ``dest``."""
    from autopot.store.database import WorkflowPaths, open_store

    dest = Path(dest)
    if dest.exists():
        raise StoreError("snapshot destination already exists", file=dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    db_file = WorkflowPaths(workflow_dir).db_file
    if db_file.is_file() and not os.environ.get("AUTOPOT_DB_ADDRESS"):
        transactions = _copy_transactions(_FileSource(db_file), dest, str(db_file))
    else:
        source = open_store(workflow_dir, read_only=True, create=False)
        try:
            transactions = _copy_transactions(source.db.storage, dest, source.description)
        finally:
            source.close()
    return _finish(dest, transactions, pack)


class _FileSource:
    """A FileStorage file as a transaction source, without opening it as a storage.

    A transaction still being written ends the iteration silently (status ``c``): that
    is the live case. Anything FileIterator only *warns* about — a transaction running
    past the end of the file, an invalid header, time stamps going backwards — means the
    file is damaged, and copying the part before it would pass off a shortened history
    as the whole database; it becomes an error naming the file.
    """

    def __init__(self, path: Path):
        self.path = path

    def iterator(self) -> Any:
        from ZODB.FileStorage import FileIterator

        fs_log = logging.getLogger("ZODB.FileStorage")
        damage = _Collect()
        fs_log.addHandler(damage)
        propagate, fs_log.propagate = fs_log.propagate, False  # reported below, as one line
        try:
            it = FileIterator(str(self.path))
            size_at_start = it._file_size
            try:
                while True:
                    pos = it._pos
                    try:
                        txn = next(it)
                    except StopIteration:
                        break
                    except Exception as exc:  # noqa: BLE001 - a header still being written?
                        if _appended_after(self.path, pos, size_at_start):
                            break
                        raise DamagedDataError(
                            f"database file is damaged: {type(exc).__name__}: {exc}",
                            file=self.path,
                        ) from None
                    damage.check(self.path)
                    yield txn
                damage.forgive_live_append(self.path, size_at_start)
                damage.check(self.path)
            finally:
                it.close()
        finally:
            fs_log.removeHandler(damage)
            fs_log.propagate = propagate


class _Collect(logging.Handler):
    """Keeps the warnings FileIterator logs while it reads."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def forgive_live_append(self, path: Path, size_at_start: int) -> None:
        """Drop a "truncated" warning about a transaction that a live server appended
        while we read: FileIterator measures the file once, at its opening, so a
        transaction completed since (its status no longer "c") seems to run past the end.
        It is damage only if the file *now* is still shorter than that transaction."""
        keep = []
        for message in self.messages:
            match = _TRUNCATED.search(message)
            if match and _appended_after(path, int(match.group(1)), size_at_start):
                continue
            keep.append(message)
        self.messages = keep

    def check(self, path: Path) -> None:
        if self.messages:
            detail = self.messages[0].replace(str(path), "").strip()
            raise DamagedDataError(f"database file is damaged: {detail}", file=path)


_TRUNCATED = re.compile(r"truncated, possibly due to damaged records at (\d+)")


def _appended_after(path: Path, pos: int, size_at_start: int) -> bool:
    """Whether the transaction at ``pos`` is one being appended since the iteration began:
    it ends beyond the size the file had then, and the file has grown to hold it (or,
    for a header not yet complete, it starts at that end)."""
    from ZODB.FileStorage.format import TRANS_HDR_LEN
    from ZODB.utils import u64

    try:
        size_now = path.stat().st_size
        with open(path, "rb") as fh:
            fh.seek(pos)
            header = fh.read(TRANS_HDR_LEN)
    except OSError:
        return False
    if len(header) < TRANS_HDR_LEN:
        return pos >= size_at_start - TRANS_HDR_LEN
    tlen = u64(header[8:16])
    end = pos + tlen + 8
    return end > size_at_start and (size_now >= end or header[16:17] == b"c")


def _copy_transactions(storage: Any, dest: Path, source: str) -> int:
    """copyTransactionsFrom, counting the transactions; the destination is removed on
    failure, and the error names the ``source`` that could not be read."""
    from ZODB.FileStorage import FileStorage

    target = FileStorage(str(dest), create=True)
    counted = _Counting(storage)
    try:
        target.copyTransactionsFrom(counted)
    except BaseException as exc:
        target.close()
        _remove_storage_files(dest)
        if isinstance(exc, StoreError | DamagedDataError) or not isinstance(exc, Exception):
            raise
        raise StoreError(
            f"cannot copy the database: {type(exc).__name__}: {exc}", file=source
        ) from None
    target.close()
    return counted.count


class _Counting:
    """A source storage whose iterator counts what it hands out."""

    def __init__(self, storage: Any):
        self.storage = storage
        self.count = 0

    def iterator(self) -> Any:
        for txn in self.storage.iterator():
            self.count += 1
            yield txn


def _finish(dest: Path, transactions: int, pack: bool) -> SnapshotInfo:
    from persistent.TimeStamp import TimeStamp
    from ZODB import DB
    from ZODB.FileStorage import FileStorage
    from ZODB.serialize import referencesf
    from ZODB.utils import tid_repr

    if transactions == 0:
        _remove_storage_files(dest)
        raise StoreError("the database holds no transaction", file=dest)
    storage = FileStorage(str(dest), pack_keep_old=False)
    try:
        if pack:
            # A pack time just after the last transaction keeps exactly the current state.
            last = TimeStamp(storage.lastTransaction()).timeTime()
            storage.pack(max(last, time.time()) + 1, referencesf)
        last_tid = storage.lastTransaction()
        db = DB(storage)
        try:
            info = _describe(db)
        finally:
            db.close()  # closes the storage
    except Exception as exc:
        storage.close()
        _remove_storage_files(dest)
        raise StoreError(
            f"the database copy does not read back: {type(exc).__name__}: {exc}", file=dest
        ) from None
    _remove_storage_files(dest, keep_data=True)
    return SnapshotInfo(
        path=dest,
        last_tid=tid_repr(last_tid),
        last_commit=TimeStamp(last_tid).timeTime(),
        transactions=transactions,
        packed=pack,
        runs=info["runs"],
        workflow_runs=info["workflow_runs"],
    )


def run_counts(root: Any) -> dict[str, dict[str, int]]:
    """task -> state -> number of runs, counted from the runs themselves (not the state
    index), so that comparing two counts also checks the records."""
    from autopot.store.workflow_records import count_states

    return count_states(root, from_records=True)


def _describe(db: Any) -> dict[str, Any]:
    conn = db.open()
    try:
        root = conn.root().get("autopot")
        if root is None:
            raise StoreError("no autopot data in the database")
        return {"runs": run_counts(root), "workflow_runs": sorted(root.workflow_runs)}
    finally:
        conn.close()


def _remove_storage_files(path: Path, *, keep_data: bool = False) -> None:
    """FileStorage's side files (index, lock, ...), and the data file unless ``keep_data``."""
    for suffix in ("", ".index", ".lock", ".tmp", ".old", ".pack")[1 if keep_data else 0 :]:
        Path(str(path) + suffix).unlink(missing_ok=True)
