"""An in-process executor that keeps the executor contract without starting processes:
what the engine's retry, adopt and outcome logic is tested against, in milliseconds.

A run's behaviour comes from its run directory's ``behaviour.json`` (written by the
conformance tests beside the equivalent ``run.sh``) or from the run's parameters
(``fail``, ``sleep`` of the toy ``work`` task), or from a ``plan`` given as an executor
option: ``{label: ["node_fail", "ok"]}``, one entry per attempt.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, ClassVar

from autopot.executors.base import EXIT_FILE, PID_FILE, STDERR, Executor, Outcome, RunSpec
from autopot.store.files import read_marker
from autopot.store.states import State


class FakeExecutor(Executor):
    name = "fake"
    #: executor ids of "processes" still alive across engine restarts in this process
    alive: ClassVar[dict[str, Path]] = {}
    submitted: ClassVar[list[str]] = []

    def __init__(
        self,
        report: Any,
        *,
        plan: dict[str, list[str]] | None = None,
        time_scale: float = 0.01,
        **options: Any,
    ):
        super().__init__(report, **options)
        self.plan = {k: list(v) for k, v in (plan or {}).items()}
        self.time_scale = time_scale
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._seq = 0

    async def submit(self, specs: list[RunSpec]) -> list[str]:
        ids = []
        for spec in specs:
            self._seq += 1
            executor_id = f"fake-{spec.label}-{spec.attempt}-{self._seq}"
            FakeExecutor.submitted.append(spec.label)
            FakeExecutor.alive[executor_id] = spec.run_dir
            self._tasks[spec.label] = asyncio.get_running_loop().create_task(
                self._run(spec.label, executor_id, spec.run_dir)
            )
            ids.append(executor_id)
        return ids

    def _behaviour(self, label: str, run_dir: Path) -> dict[str, Any]:
        if self.plan.get(label):
            step = self.plan[label].pop(0)
            return {
                "ok": {},
                "fail": {"exit": 3, "stderr": "failing on purpose"},
                "node_fail": {"retry": True},
                "hang": {"sleep": 3600},
            }[step]
        file = run_dir / "behaviour.json"
        if file.exists():
            return json.loads(file.read_text())
        params = read_marker(run_dir).get("params", {})
        return {"exit": 3 if params.get("fail") else 0, "sleep": params.get("sleep", 0.0)}

    async def _run(self, label: str, executor_id: str, run_dir: Path) -> None:
        behaviour = self._behaviour(label, run_dir)
        (run_dir / PID_FILE).write_text("0\n")
        await self.emit(Outcome(label, State.RUNNING, executor_id=executor_id))
        try:
            await asyncio.sleep(float(behaviour.get("sleep", 0.0)) * self.time_scale)
        except asyncio.CancelledError:
            FakeExecutor.alive.pop(executor_id, None)
            await self.emit(
                Outcome(label, State.CANCELLED, cause="cancelled", executor_id=executor_id)
            )
            return
        FakeExecutor.alive.pop(executor_id, None)
        if behaviour.get("retry"):
            await self.emit(
                Outcome(
                    label, State.FAILED, cause="node failure", executor_id=executor_id, retry=True
                )
            )
            return
        code = int(behaviour.get("exit", 0))
        if behaviour.get("stderr"):
            (run_dir / STDERR).write_text(behaviour["stderr"] + "\n")
        (run_dir / EXIT_FILE).write_text(f"{code}\n")
        if code == 0:
            await self.emit(Outcome(label, State.FINISHED, exit_code=0, executor_id=executor_id))
        else:
            cause = f"exit code {code}" + (
                f": {behaviour['stderr']}" if behaviour.get("stderr") else ""
            )
            await self.emit(
                Outcome(label, State.FAILED, exit_code=code, cause=cause, executor_id=executor_id)
            )

    async def cancel(self, labels: list[str]) -> None:
        for label in labels:
            task = self._tasks.get(label)
            if task is not None and not task.done():
                task.cancel()

    async def adopt(self, label: str, executor_id: str, run_dir: Path) -> bool:
        if executor_id not in FakeExecutor.alive:
            return False
        self._tasks[label] = asyncio.get_running_loop().create_task(
            self._run(label, executor_id, run_dir)
        )
        return True

    async def close(self) -> None:
        for task in self._tasks.values():
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
