"""The cu-quick demo end to end through the mlp backend's code path.

No MLIP-2 binary can be installed here, so ``--mtp_backend`` points at
``tests/mtp/mlp_standin.py`` in emulate mode: a stand-in at the process boundary only.
The workflow, the tasks and :class:`autopot.mtp.backend.MlpBackend` run unchanged — argument
lists, work directories, input files, ``state.als``/``selected.cfg`` in the cwd, the stdout
report parsed for the errors — while the stand-in answers each ``mlp`` command with
autopot's motep implementation of it (and replays the real recordings of
../shared/data/mlp where its inputs are the recorded ones).  It refuses unknown commands
and options, so a wrong command line fails this test.  With a real ``mlp`` on PATH the test
runs against it instead.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from autopot.engine.workflow import Workflow

from .conftest import start

STANDIN = Path(__file__).resolve().parents[1] / "mtp" / "mlp_standin.py"


def _standin_binary(bin_dir: Path, calls: Path) -> Path:
    spec = importlib.util.spec_from_file_location("mlp_standin", STANDIN)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module.install(bin_dir, emulate=True, calls=calls)


@pytest.mark.slow
def test_cu_quick_runs_through_the_mlp_backend(autopot_wf: Path, tmp_path: Path) -> None:
    calls = tmp_path / "mlp_calls.txt"
    binary = shutil.which("mlp") or str(_standin_binary(tmp_path / "bin", calls))
    proc = start(autopot_wf, "--preset", "cu-quick", "--mtp_backend", binary)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with Workflow(autopot_wf, read_only=True) as wf:
        assert wf.summary["converged"] is True
        trains = wf.train.runs
        assert len(trains) >= 2 and all(r.finished for r in trains)
        for run in trains:
            assert run.params["mtp_backend"]["name"] == "mlp"
            assert run.params["mtp_backend"]["binary"] == binary
            log = run.path("train") / "mlp_train.log"
            assert log.is_file() and "Errors report" in log.read_text()
            q = run.quantities
            for key in ("energy_rmse_per_atom", "forces_rmse", "stress_rmse", "stress_ev_rmse"):
                assert q[key] >= 0, key
        assert any(r.finished for r in wf.md_select.runs)
    if not shutil.which("mlp"):
        commands = {line.split()[0] for line in calls.read_text().splitlines()}
        assert {"train", "calc-grade", "select-add"} <= commands
