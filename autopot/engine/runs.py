"""What orchestrator code holds: live views of runs, and awaitable lists of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autopot.errors import WorkflowError
from autopot.store.database import WorkflowPaths
from autopot.store.states import TERMINAL, State

if TYPE_CHECKING:
    from autopot.engine.workflow import Workflow


class TaskFailed(WorkflowError):
    """Awaited runs ended FAILED or CANCELLED; the message lists them with causes."""


class RunView:
    """A run as orchestrator code sees it: always the latest committed state."""

    __slots__ = ("workflow", "task", "id")

    def __init__(self, workflow: Workflow, task: str, run_id: int):
        self.workflow = workflow
        self.task = task
        self.id = run_id

    @property
    def label(self) -> str:
        return f"{self.task}.{self.id}"

    @property
    def record(self) -> Any:
        """The persistent :class:`autopot.store.model.Run` (read-only use)."""
        return self.workflow.store.root.task_types[self.task].runs[self.id]

    @property
    def state(self) -> str:
        return self.record.state

    @property
    def params(self) -> dict[str, Any]:
        r = self.record
        return {**r.params, **r.job.params}

    @property
    def quantities(self) -> dict[str, Any]:
        return dict(self.record.quantities)

    @property
    def cause(self) -> str:
        return self.record.cause

    @property
    def exit_code(self) -> int | None:
        return self.record.exit_code

    @property
    def directory(self) -> Path:
        rel = self.record.directory
        return (
            self.workflow.directory / rel
            if rel
            else WorkflowPaths(self.workflow.directory).run_dir(self.task, self.id)
        )

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def finished(self) -> bool:
        return self.state == State.FINISHED.value

    @property
    def failed(self) -> bool:
        return self.state in (State.FAILED.value, State.CANCELLED.value)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def __repr__(self) -> str:
        return f"<run {self.label} {self.state}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunView) and (other.task, other.id) == (self.task, self.id)

    def __hash__(self) -> int:
        return hash((self.task, self.id))


class RunList(list[RunView]):
    """A list of runs; ``await runs`` waits until every one has ended.

    Awaiting raises :class:`TaskFailed` when any ended FAILED/CANCELLED (failures are
    never silent); ``await runs.settled()`` returns regardless, for orchestrators that
    tolerate failures. ``async for run in runs.as_completed()`` yields each run as it
    ends, so follow-up work starts without waiting for unrelated runs.
    """

    def __init__(self, runs: Iterable[RunView] = (), workflow: Workflow | None = None):
        super().__init__(runs)
        self.workflow = workflow

    def _engine(self) -> Any:
        engine = self.workflow.engine if self.workflow is not None else None
        if engine is None:
            raise WorkflowError(
                "runs can only be awaited inside a running orchestrator", field="engine"
            )
        return engine

    async def settled(self) -> RunList:
        if self:
            engine = self._engine()
            await asyncio.gather(*(engine.future(r) for r in self))
        return self

    async def wait(self) -> RunList:
        await self.settled()
        bad = self.failed
        if bad:
            causes = "; ".join(
                f"{r.label} {r.state}: {r.cause or 'no cause recorded'}" for r in bad[:5]
            )
            more = f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""
            raise TaskFailed(f"{len(bad)} of {len(self)} runs did not finish: {causes}{more}")
        return self

    def __await__(self) -> Any:
        return self.wait().__await__()

    async def as_completed(self) -> AsyncIterator[RunView]:
        if not self:
            return
        engine = self._engine()
        futures = {engine.future(r): r for r in self}
        for fut in asyncio.as_completed(list(futures)):
            view = await fut
            yield view

    @property
    def finished(self) -> list[RunView]:
        return [r for r in self if r.finished]

    @property
    def failed(self) -> list[RunView]:
        return [r for r in self if r.failed]

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self]

    def __add__(self, other: Iterable[RunView]) -> RunList:  # type: ignore[override]
        return RunList([*self, *other], self.workflow)
