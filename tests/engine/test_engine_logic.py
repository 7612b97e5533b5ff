"""The engine's outcome, retry and adopt logic against the in-process fake executor
(tests/executors/fake.py): the real engine, store and templates, no processes; each test
well under a second."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from executors.fake import FakeExecutor

from autopot.engine.core import Engine
from autopot.engine.runs import TaskFailed
from autopot.engine.workflow import Workflow
from autopot.store.database import Store, WorkflowPaths
from autopot.store.model import WorkflowRun
from autopot.store.records import create_runs
from autopot.store.states import State

TOY = Path(__file__).parent / "toy"


def fake_workflow(
    tmp_path: Path, *, retries: int = 1, plan: dict[str, list[str]] | None = None
) -> Path:
    dest = tmp_path / "wf"
    shutil.copytree(TOY / "tasks", dest / "tasks")
    plan_yaml = "{" + ", ".join(f'"{k}": {v}' for k, v in (plan or {}).items()) + "}"
    (dest / "motoko.yaml").write_text(
        f"executor: {{name: 'executors.fake:FakeExecutor', plan: {plan_yaml}}}\n"
        f"task_managers:\n  work: {{template: tasks/work, retries: {retries}}}\n  collect: tasks/collect\n"
    )
    FakeExecutor.alive.clear()
    FakeExecutor.submitted.clear()
    return dest / "motoko.yaml"


def run_engine(
    motoko: Path, main: Callable[..., Any], prepare: Callable[[Any], None] | None = None
) -> Any:
    """One orchestrator run in this process on an embedded database."""
    directory = motoko.parent / "autopot-workflow"
    store = Store.open_file(WorkflowPaths(directory).db_file)
    try:

        def begin(root: Any) -> None:
            if "default" not in root.workflow_runs:
                root.workflow_runs["default"] = WorkflowRun("default", {})

        store.transact(begin)
        workflow = Workflow(motoko, run_name="default", store=store)
        if prepare is not None:
            store.transact(lambda root: prepare(root, workflow))
        engine = Engine(workflow)
        workflow.engine = engine
        return asyncio.run(engine.run(main, {}))
    finally:
        store.close()


def summary(runs: Any) -> list[tuple[str, str, int | None, int, str]]:
    return [(r.label, r.state, r.exit_code, r.record.attempts, r.cause) for r in runs]


def test_outcomes_become_run_states_and_failures_fail_the_workflow(tmp_path: Path) -> None:
    motoko = fake_workflow(tmp_path)

    async def main(workflow: Any) -> Any:
        runs = workflow.work.create_tasks(i=[0, 1]) + workflow.work.create_tasks(i=2, fail=True)
        await runs.settled()
        return summary(runs)

    t0 = time.perf_counter()
    rows = run_engine(motoko, main)
    assert rows[:2] == [("work.1", "FINISHED", 0, 1, ""), ("work.2", "FINISHED", 0, 1, "")]
    assert rows[2][:4] == ("work.3", "FAILED", 3, 1) and "exit code 3" in rows[2][4]

    async def awaiting(workflow: Any) -> None:
        await workflow.work.create_tasks(i=2, fail=True)  # the same job: failed, tried again

    with pytest.raises(
        TaskFailed, match=r"work\.4 FAILED: exit code 3"
    ):  # a new run of the failed job
        run_engine(motoko, awaiting)
    assert time.perf_counter() - t0 < 3


def test_node_failure_is_resubmitted_within_the_budget(tmp_path: Path) -> None:
    motoko = fake_workflow(
        tmp_path,
        retries=1,
        plan={"work.1": ["node_fail", "ok"], "work.2": ["node_fail", "node_fail"]},
    )

    async def main(workflow: Any) -> Any:
        runs = workflow.work.create_tasks(i=[0, 1])
        await runs.settled()
        return summary(runs)

    (first, second) = run_engine(motoko, main)
    assert first[:4] == ("work.1", "FINISHED", 0, 2)  # failed once on a node, resubmitted, finished
    assert (
        second[:4] == ("work.2", "FAILED", None, 2) and "node failure" in second[4]
    )  # budget spent
    assert (
        FakeExecutor.submitted.count("work.1") == 2 and FakeExecutor.submitted.count("work.2") == 2
    )


def _in_flight(
    state: State, executor_id: str, write: dict[str, str], attempts: int = 1
) -> Callable[[Any, Any], None]:
    """A run left SUBMITTED/RUNNING by a previous orchestrator, with files in its directory
    (``attempts``: how many times it was submitted before)."""

    def prepare(root: Any, workflow: Any) -> None:
        ((run, _),) = create_runs(root, workflow.schemas["work"], {"i": 7}, run_name="default")
        run.directory = "runs/work/1"
        for _ in range(attempts - 1):
            run.set_state(State.SUBMITTED, executor="fake", executor_id=executor_id)
            run.set_state(State.FAILED, "lost before")
        run.set_state(State.SUBMITTED, executor="fake", executor_id=executor_id)
        if state is State.RUNNING:
            run.set_state(State.RUNNING)
        run_dir = workflow.directory / run.directory
        run_dir.mkdir(parents=True, exist_ok=True)
        for name, text in write.items():
            (run_dir / name).write_text(text)
        if executor_id.startswith("alive"):
            FakeExecutor.alive[executor_id] = run_dir

    return prepare


async def _again(workflow: Any) -> Any:
    runs = workflow.work.create_tasks(i=7)
    await runs.settled()
    return summary(runs)


def test_a_live_run_is_adopted_not_repeated(tmp_path: Path) -> None:
    motoko = fake_workflow(tmp_path)
    rows = run_engine(
        motoko, _again, _in_flight(State.RUNNING, "alive-1", {"behaviour.json": "{}"})
    )
    assert rows == [("work.1", "FINISHED", 0, 1, "")]
    assert FakeExecutor.submitted == []  # watched, never resubmitted


def test_a_run_that_ended_unwatched_takes_its_exit_file(tmp_path: Path) -> None:
    motoko = fake_workflow(tmp_path)
    rows = run_engine(
        motoko,
        _again,
        _in_flight(State.RUNNING, "gone-1", {".autopot_pid": "1\n", ".autopot_exit": "4\n"}),
    )
    assert rows[0][:4] == ("work.1", "FAILED", 4, 1) and FakeExecutor.submitted == []


def test_a_run_that_never_started_is_resubmitted(tmp_path: Path) -> None:
    motoko = fake_workflow(tmp_path, retries=0)
    rows = run_engine(motoko, _again, _in_flight(State.SUBMITTED, "gone-2", {}))
    assert rows[0][:4] == ("work.1", "FINISHED", 0, 2) and FakeExecutor.submitted == ["work.1"]


def test_a_run_lost_in_a_crash_is_resubmitted_beyond_the_task_budget(tmp_path: Path) -> None:
    """No outcome, no exit status: it died with the orchestrator (a full crash), which is
    not the task's failure; the first restart re-runs it even with ``retries: 0``."""
    motoko = fake_workflow(tmp_path, retries=0)
    rows = run_engine(motoko, _again, _in_flight(State.RUNNING, "gone-3", {".autopot_pid": "1\n"}))
    assert rows[0][:4] == ("work.1", "FINISHED", 0, 2) and FakeExecutor.submitted == ["work.1"]


def test_a_lost_run_beyond_its_budget_fails_with_the_reason(tmp_path: Path) -> None:
    from autopot.engine.workflow import LOST_RETRIES

    motoko = fake_workflow(tmp_path, retries=0)
    rows = run_engine(
        motoko,
        _again,
        _in_flight(State.RUNNING, "gone-3", {".autopot_pid": "1\n"}, attempts=LOST_RETRIES + 1),
    )
    assert (
        rows[0][:2] == ("work.1", "FAILED")
        and "vanished while the orchestrator was down" in rows[0][4]
    )
    assert FakeExecutor.submitted == []
