"""A job that exceeds its time limit is TIMEOUT, flagged for resubmission within the
budget, and its resubmission runs (the scenario runs in the background: conftest.py)."""

from __future__ import annotations

import pytest

from autopot.executors.base import Outcome
from autopot.executors.slurm import SlurmExecutor, _Job

from .conftest import TimeoutScenario

pytestmark = pytest.mark.slurm


def test_timeout_is_failed_and_resubmitted_once(timeout_scenario: TimeoutScenario | None) -> None:
    if timeout_scenario is None:
        pytest.skip("SLURM is not available")
    timeout_scenario.join(timeout=240)
    assert not timeout_scenario.is_alive(), "TIMEOUT scenario did not end in time"
    if timeout_scenario.error is not None:
        raise timeout_scenario.error
    h, spec = timeout_scenario.harness, timeout_scenario.spec
    ends = [o for o in h.of(spec.label) if o.state in ("FINISHED", "FAILED", "CANCELLED")]
    assert len(ends) == 2, h.of(spec.label)
    first, second = ends
    assert (
        first.state == "FAILED"
        and first.retry
        and "TIMEOUT" in first.cause
        and "time limit" in first.cause
    )
    assert first.executor_id == timeout_scenario.ids[0]
    assert (
        second.state == "FINISHED"
        and second.executor_id == timeout_scenario.ids[1] != timeout_scenario.ids[0]
    )
    assert (spec.run_dir / "attempts").read_text().strip() == "2"
    assert "attempt 2 done" in (spec.run_dir / "stdout.log").read_text()
    assert h.executor.stats.sbatch == 2


def test_retry_budget_caps_resubmission(tmp_path) -> None:
    ex = SlurmExecutor(lambda o: None, retries=1)
    first = ex._outcome(_Job("t.1", tmp_path, "5", attempt=1), "TIMEOUT", (None, None), "")
    second = ex._outcome(_Job("t.1", tmp_path, "6", attempt=2), "TIMEOUT", (None, None), "")
    assert first.retry and not second.retry and second.state == "FAILED"
    node = ex._outcome(_Job("t.1", tmp_path, "7", attempt=1), "NODE_FAIL", (None, None), "")
    oom = ex._outcome(_Job("t.1", tmp_path, "8", attempt=1), "OUT_OF_MEMORY", (0, None), "")
    assert node.retry and "NODE_FAIL" in node.cause
    assert isinstance(oom, Outcome) and not oom.retry and "memory" in oom.cause
    # no executor cap: the engine applies the task manager's `retries`
    assert (
        SlurmExecutor(lambda o: None)
        ._outcome(_Job("t.1", tmp_path, "9", attempt=5), "TIMEOUT", (None, None), "")
        .retry
    )
