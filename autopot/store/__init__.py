"""The autopot store: every task execution, in a ZODB object database.

``open_store(workflow_dir)`` gives a :class:`Store`; records are created with the
functions of :mod:`autopot.store.records` inside :meth:`Store.transact`, and selected
with :mod:`autopot.store.query`.
"""

from autopot.store.database import Store, WorkflowPaths, open_store
from autopot.store.states import TERMINAL, State

__all__ = ["Store", "WorkflowPaths", "open_store", "State", "TERMINAL"]
