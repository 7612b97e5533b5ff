"""The executor contract against the local executor (real processes, cold and warm) and
the fake."""

from __future__ import annotations

from autopot.executors.base import Executor
from autopot.executors.local import LocalExecutor

from .conformance import ExecutorConformance, Recorder
from .fake import FakeExecutor


class TestLocalExecutor(ExecutorConformance):
    """Cold: shell bodies in run.sh, as before warm start existed."""

    def make_executor(self, report: Recorder) -> Executor:
        return LocalExecutor(report, max_parallel=2, warm=False)


class TestLocalExecutorColdPython(ExecutorConformance):
    """Python tasks behind the stock run.sh, warm start off: the reference for the next."""

    python_tasks = True

    def make_executor(self, report: Recorder) -> Executor:
        return LocalExecutor(report, max_parallel=2, warm=False)

    def check_executor(self, executor: Executor) -> None:
        assert isinstance(executor, LocalExecutor) and executor.started["warm"] == 0


class TestLocalExecutorWarm(ExecutorConformance):
    """The same Python tasks forked from the warm-start server (the default)."""

    python_tasks = True

    def make_executor(self, report: Recorder) -> Executor:
        return LocalExecutor(report, max_parallel=2, preload=["json"])

    def check_executor(self, executor: Executor) -> None:
        assert isinstance(executor, LocalExecutor) and executor.warm is not None
        assert executor.started["cold"] == 0, executor.warm.disabled


class TestFakeExecutor(ExecutorConformance):
    timeout = 5.0

    def make_executor(self, report: Recorder) -> Executor:
        return FakeExecutor(report)
