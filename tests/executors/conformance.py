"""The executor contract, as a test mixin run against every executor (ZODB's storage-test
style): the local executor, the SLURM executor and the in-process fake.

A subclass provides ``make_executor(report)`` (and may mark itself, e.g. ``slurm``), and
sets ``python_tasks`` to run the same behaviours as Python tasks behind the stock
``run.sh`` (what the local executor forks warm) instead of shell bodies.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autopot.executors.base import EXIT_FILE, Executor, Outcome, RunSpec
from autopot.store.states import TERMINAL, State

#: behaviour name -> (run.sh body, the same for the fake executor)
BEHAVIOURS: dict[str, tuple[str, dict[str, Any]]] = {
    "ok": ('echo "hello $AUTOPOT_TEST"', {}),
    "fail": (
        'echo "bad input on line 7" >&2; exit 3',
        {"exit": 3, "stderr": "bad input on line 7"},
    ),
    "hang": ("exec sleep 600", {"sleep": 600}),
}
#: the same behaviours as ``doIt.py`` bodies, run by the stock ``run.sh``
PYTHON_BEHAVIOURS: dict[str, str] = {
    "ok": "import os\nprint(f\"hello {os.environ['AUTOPOT_TEST']}\")",
    "fail": 'import sys\nprint("bad input on line 7", file=sys.stderr)\nsys.exit(3)',
    "hang": "import time\ntime.sleep(600)",
}
STOCK_RUN_SH = '#!/bin/sh\nexec "${AUTOPOT_PYTHON:-python3}" doIt.py\n'


def make_spec(base: Path, label: str, behaviour: str, python: bool = False) -> RunSpec:
    task, _, ident = label.partition(".")
    run_dir = base / "runs" / task / ident
    run_dir.mkdir(parents=True, exist_ok=True)
    body, fake = BEHAVIOURS[behaviour]
    if python:
        (run_dir / "run.sh").write_text(STOCK_RUN_SH)
        (run_dir / "doIt.py").write_text(PYTHON_BEHAVIOURS[behaviour] + "\n")
    else:
        (run_dir / "run.sh").write_text("#!/bin/sh\n" + body + "\n")
    (run_dir / "behaviour.json").write_text(json.dumps(fake))
    return RunSpec(
        task, int(ident), label, run_dir, {"AUTOPOT_TEST": "1"}, {"slurm_options": {"time": "5"}}
    )


class Recorder:
    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.changed = asyncio.Event()

    def __call__(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.changed.set()

    def final(self, label: str) -> Outcome | None:
        ends = [o for o in self.outcomes if o.label == label and o.state in TERMINAL]
        return ends[-1] if ends else None

    async def until(self, predicate: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; outcomes: {self.outcomes[-5:]}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 0.5)
            except TimeoutError:
                pass


class ExecutorConformance:
    """Behaviour every executor shows, whatever it runs on."""

    timeout = 60.0
    python_tasks = False

    def make_executor(self, report: Recorder) -> Executor:
        raise NotImplementedError

    def spec(self, base: Path, label: str, behaviour: str) -> RunSpec:
        return make_spec(base, label, behaviour, python=self.python_tasks)

    def check_executor(self, executor: Executor) -> None:
        """Called after each scenario, before close (e.g. which start path was taken)."""

    def run(self, scenario: Callable[[Executor, Recorder], Any]) -> Recorder:
        async def main() -> Recorder:
            recorder = Recorder()
            executor = self.make_executor(recorder)
            await executor.start()
            try:
                await scenario(executor, recorder)
                self.check_executor(executor)
            finally:
                await executor.close()
            return recorder

        return asyncio.run(main())

    def test_empty_submission(self, tmp_path: Path) -> None:
        async def scenario(executor: Executor, rec: Recorder) -> None:
            assert await executor.submit([]) == []

        self.run(scenario)

    def test_success_and_failure_are_reported_with_exit_codes(self, tmp_path: Path) -> None:
        ok, bad = self.spec(tmp_path, "work.1", "ok"), self.spec(tmp_path, "work.2", "fail")

        async def scenario(executor: Executor, rec: Recorder) -> None:
            ids = await executor.submit([ok, bad])
            assert len(ids) == 2 and all(isinstance(i, str) and i for i in ids)
            await rec.until(lambda: rec.final("work.1") and rec.final("work.2"), self.timeout)

        rec = self.run(scenario)
        first, second = rec.final("work.1"), rec.final("work.2")
        assert first.state == State.FINISHED and first.exit_code == 0
        assert second.state == State.FAILED and second.exit_code == 3 and not second.retry
        assert "exit code 3" in second.cause and "bad input on line 7" in second.cause
        assert (ok.run_dir / EXIT_FILE).read_text().strip() == "0"
        assert isinstance(first.state, State)  # typed, not a bare string

    def test_cancel_stops_a_running_run(self, tmp_path: Path) -> None:
        spec = self.spec(tmp_path, "work.3", "hang")

        async def scenario(executor: Executor, rec: Recorder) -> None:
            await executor.submit([spec])
            await rec.until(
                lambda: any(o.state == State.RUNNING for o in rec.outcomes), self.timeout
            )
            await executor.cancel([spec.label])
            await rec.until(lambda: rec.final(spec.label) is not None, self.timeout)

        rec = self.run(scenario)
        assert rec.final(spec.label).state == State.CANCELLED

    def test_adopting_an_unknown_run_says_no(self, tmp_path: Path) -> None:
        spec = self.spec(tmp_path, "work.4", "ok")

        async def scenario(executor: Executor, rec: Recorder) -> None:
            assert await executor.adopt(spec.label, "", spec.run_dir) is False

        self.run(scenario)
