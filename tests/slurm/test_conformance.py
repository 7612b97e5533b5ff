"""The executor contract (tests/executors/conformance.py) against the real SLURM."""

from __future__ import annotations

import pytest
from executors.conformance import ExecutorConformance, Recorder

from autopot.executors.base import Executor
from autopot.executors.slurm import SlurmExecutor

pytestmark = pytest.mark.slurm


@pytest.mark.usefixtures("slurm")
class TestSlurmExecutor(ExecutorConformance):
    timeout = 120.0

    def make_executor(self, report: Recorder) -> Executor:
        return SlurmExecutor(report, poll_interval=0.25, max_poll_interval=1.0)
