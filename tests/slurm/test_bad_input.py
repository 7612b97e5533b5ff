"""Bad input: clear one-line errors naming the task and the option; nothing recorded as
submitted that was not. Validation tests need no SLURM; the sbatch ones do."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from autopot.errors import ExecutorError
from autopot.executors.slurm import SlurmExecutor
from autopot.executors.slurm_script import INTENT_FILE, sbatch_lines

from .conftest import Harness, make_runs


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"partiton": "debug"}, "slurm_options.partiton", "unknown SLURM option 'partiton'"),
        ({"time": "ten minutes"}, "slurm_options.time", "invalid value 'ten minutes'"),
        ({"ntasks": 0}, "slurm_options.ntasks", "positive integer"),
        ({"partition": "debug\n#SBATCH --wrap=rm"}, "slurm_options.partition", "invalid value"),
        ({"account": "x; rm -rf ~"}, "slurm_options.account", "invalid value"),
        ({"extra": ["--gres=gpu:1\n--x"]}, "slurm_options.extra", "line breaks"),
        ({"extra": ["-N 2"]}, "slurm_options.extra", "must start with '--'"),
        ({"extra": ["--array=0-99"]}, "slurm_options.extra", "--array is set by autopot"),
        ({"mem": True}, "slurm_options.mem", "expected a string or integer"),
    ],
)
def test_invalid_options_name_task_and_option(options: dict, field: str, words: str) -> None:
    with pytest.raises(ExecutorError) as err:
        sbatch_lines("sp_calc.12", options)
    text = str(err.value)
    assert err.value.field == field and "task sp_calc.12" in text and words in text
    assert "\n" not in text


def test_valid_options_become_sbatch_lines() -> None:
    lines = sbatch_lines(
        "x.1",
        {
            "partition": "debug",
            "time": "1-02:00:00",
            "ntasks": 4,
            "mem": "4G",
            "cpus_per_task": 2,
            "constraint": "skylake&ib",
            "extra": ["--gres=gpu:1"],
        },
    )
    assert lines == [
        "#SBATCH --constraint=skylake&ib",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --mem=4G",
        "#SBATCH --ntasks=4",
        "#SBATCH --partition=debug",
        "#SBATCH --time=1-02:00:00",
    ]


def test_unknown_option_fails_before_any_submission(tmp_path: Path) -> None:
    good = make_runs(tmp_path, "a", ["true"])
    bad = make_runs(tmp_path, "b", ["true"], {"walltime": "10"})

    async def scenario() -> SlurmExecutor:
        h = Harness(sbatch="/nonexistent/sbatch-should-not-run")
        with pytest.raises(ExecutorError, match=r"task b\.1: unknown SLURM option 'walltime'"):
            await h.executor.submit([*good, *bad])
        await h.executor.close()
        return h.executor

    ex = asyncio.run(scenario())
    assert ex.stats.sbatch == 0
    assert not any((s.run_dir / INTENT_FILE).exists() for s in [*good, *bad])


def test_unknown_executor_option() -> None:
    with pytest.raises(ExecutorError, match="unknown option 'pol_interval' of the slurm executor"):
        SlurmExecutor(lambda o: None, pol_interval=1)


def test_sbatch_missing_from_path(tmp_path: Path) -> None:
    # a command name that is on no PATH, rather than emptying PATH: the TIMEOUT scenario's
    # thread submits with the real sbatch while this test runs
    (spec,) = make_runs(tmp_path, "sp_calc", ["true"])

    async def scenario() -> None:
        h = Harness(sbatch="sbatch-not-installed-here")
        with pytest.raises(ExecutorError) as err:
            await h.executor.submit([spec])
        await h.executor.close()
        message = str(err.value)
        assert (
            "task sp_calc.1" in message
            and "'sbatch-not-installed-here' not found on PATH" in message
        )
        assert err.value.field == "executor.sbatch"

    asyncio.run(scenario())
    assert not (spec.run_dir / INTENT_FILE).exists()


@pytest.mark.slurm
def test_sbatch_rejecting_the_job(slurm: None, tmp_path: Path) -> None:
    specs = make_runs(tmp_path, "train", ["true"] * 3, {"partition": "nosuchpartition"})

    async def scenario() -> SlurmExecutor:
        h = Harness()
        with pytest.raises(ExecutorError) as err:
            await h.executor.submit(specs)
        await h.executor.close()
        text = str(err.value)
        assert (
            "task train.1 (and 2 more): sbatch rejected the job" in text
            and "partition" in text.lower()
        )
        assert err.value.field == "slurm_options.partition"
        return h.executor

    ex = asyncio.run(scenario())
    assert ex.stats.sbatch == 1
    assert not any((s.run_dir / INTENT_FILE).exists() for s in specs)
    # Nothing of this test's is queued. Other tests' jobs may come and go meanwhile, so
    # look for this test's own directory in the jobs' work directories and scripts.
    queued = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i|%Z|%o"], capture_output=True, text=True
    ).stdout
    assert str(tmp_path) not in queued, queued


@pytest.mark.slurm
def test_failure_of_a_later_array_cancels_the_earlier_ones(slurm: None, tmp_path: Path) -> None:
    """One submit() is all-or-nothing: if the second sbatch is rejected, the first job is
    cancelled, so nothing the engine marks FAILED keeps running."""
    ok = make_runs(tmp_path, "a", ["sleep 30"] * 2)
    bad = make_runs(tmp_path, "b", ["true"], {"partition": "nosuchpartition"})

    async def scenario() -> Harness:
        h = Harness()
        with pytest.raises(ExecutorError, match="sbatch rejected"):
            await h.executor.submit([*ok, *bad])
        await h.executor.close()
        return h

    h = asyncio.run(scenario())
    assert h.executor.stats.sbatch == 2 and h.executor.stats.scancel == 1
    assert not any((s.run_dir / INTENT_FILE).exists() for s in [*ok, *bad])
    for _ in range(50):  # cancelled jobs may show COMPLETING for a moment
        rows = subprocess.run(
            ["squeue", "-h", "-r", "-t", "PENDING,RUNNING", "-o", "%i %Z"],
            capture_output=True,
            text=True,
        ).stdout.splitlines()
        if not [r for r in rows if str(tmp_path) in r]:
            break
        time.sleep(0.2)
    assert not [r for r in rows if str(tmp_path) in r]
