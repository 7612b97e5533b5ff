"""A database snapshot taken while another process keeps committing (what ``autopot
archive`` does during a run) never reports a transaction still being written as damage."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from autopot.store.database import WorkflowPaths
from autopot.store.snapshot import _FileSource, snapshot_database

WRITER = """
import sys, time
import numpy as np
from autopot.store.database import open_store
from autopot.store.model import WorkflowRun

store = open_store(sys.argv[1])
end = time.time() + float(sys.argv[2])
i = 0
while time.time() < end:
    def write(root, i=i):
        wr = root.workflow_runs.get("live") or WorkflowRun("live", {})
        root.workflow_runs["live"] = wr
        wr.summary = {**wr.summary, f"k{i % 50}": np.random.rand(2000)}  # ~16 kB per commit
    store.transact(write)
    i += 1
store.close()
print(i)
"""


def test_snapshots_during_commits_are_never_called_damaged(
    zeo_server: Path, tmp_path: Path
) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(zeo_server), "6"], stdout=subprocess.PIPE, text=True
    )
    try:
        taken = 0
        deadline = time.time() + 5
        while time.time() < deadline:
            snapshot_database(zeo_server, tmp_path / f"snap{taken}.fs", pack=False)
            taken += 1
    finally:
        out, _ = writer.communicate(timeout=60)
    assert writer.returncode == 0 and int(out) > 20
    assert taken >= 3


def test_a_transaction_completed_after_the_iterator_opened_is_not_damage(
    zeo_server: Path, tmp_path: Path, monkeypatch
) -> None:
    """The exact race, made deterministic: FileIterator measured the file before the last
    transaction was complete; by the time it reads that transaction it is whole."""
    from autopot.store.database import open_store

    with open_store(zeo_server) as store:
        store.transact(lambda root: root.workflow_runs.__setitem__("x", None))
        store.transact(lambda root: root.workflow_runs.__setitem__("y", np.zeros(100)))
    fs = WorkflowPaths(zeo_server).db_file
    full = fs.stat().st_size

    from ZODB.FileStorage import FileIterator

    real = FileIterator.__init__

    def measured_early(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        real(self, *args, **kwargs)
        self._file_size = full - 100  # as if measured while the last one was being written

    monkeypatch.setattr(FileIterator, "__init__", measured_early)
    txns = list(_FileSource(fs).iterator())
    assert len(txns) >= 2  # every whole transaction before it, and no DamagedDataError
