"""One error type for everything a user can get wrong, rendered as one line.

Users read these on a login node: the message names the file and the field so they can
fix their input without reading a traceback.
"""

from __future__ import annotations

from pathlib import Path


class AutopotError(Exception):
    """A user-facing error: ``<file>: <field>: <message>`` on one line."""

    def __init__(self, message: str, *, file: str | Path | None = None, field: str | None = None):
        self.file = str(file) if file is not None else None
        self.field = field
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        text = " ".join(self.message.split())
        return ": ".join([*parts, text])


class SchemaError(AutopotError):
    """A bd.yaml is malformed or a parameter value does not fit its declared type."""


class StoreError(AutopotError):
    """The database cannot be opened, is corrupted, locked, or refuses a write."""


class QueryError(AutopotError):
    """A ``--where`` constraint cannot be parsed."""


class WorkflowError(AutopotError):
    """motoko.yaml, a task manager or the orchestrator module is wrong."""


class ExecutorError(AutopotError):
    """A task could not be submitted, or its executor failed."""


class MTPError(AutopotError):
    """A .cfg/.mtp file, an atom-type mapping or an MTP backend is wrong."""
