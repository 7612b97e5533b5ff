"""The executor contract against the local executor (real processes) and the fake."""

from __future__ import annotations

from autopot.executors.base import Executor
from autopot.executors.local import LocalExecutor

from .conformance import ExecutorConformance, Recorder
from .fake import FakeExecutor


class TestLocalExecutor(ExecutorConformance):
    def make_executor(self, report: Recorder) -> Executor:
        return LocalExecutor(report, max_parallel=2)


class TestFakeExecutor(ExecutorConformance):
    timeout = 5.0

    def make_executor(self, report: Recorder) -> Executor:
        return FakeExecutor(report)
