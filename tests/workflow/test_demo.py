"""The embedded demo (reduced preset) converges end to end and leaves answerable records."""

from __future__ import annotations

from pathlib import Path

from autopot.engine.workflow import Workflow
from autopot.mtp.cfg import read_cfg

from .conftest import start


def test_cu_quick_demo_converges_and_is_queryable(finished_demo: Path) -> None:
    autopot_wf = finished_demo
    printed = (finished_demo.parent / "demo.log").read_text()
    assert "AutoPot summary" in printed and "converged" in printed

    with Workflow(autopot_wf, read_only=True) as wf:
        summary = wf.summary
        assert summary["converged"] is True
        iterations = summary["iterations"]
        stages = [it["stage"] for it in iterations]
        assert stages[0] == "calculate_ts" and "select" in stages
        # how many configurations each iteration added, and at which threshold
        for it in iterations:
            if it["stage"] == "select":
                assert it["threshold"] in (10.0, 2.0) and it["n_added"] > 0
        # which sp_calc results went into which train run
        trains = wf.train.runs
        assert [r.label for r in trains] == [it["train"] for it in iterations]
        for run, it in zip(trains, iterations, strict=True):
            ids = run.params["sp_calc_ids"]
            assert [f"sp_calc.{i}" for i in ids] == sorted(
                it["sp_calc"], key=lambda s: int(s.split(".")[1])
            )
            assert all(wf.sp_calc.select(f"id = {i}")[0].finished for i in ids)
        # the last potential and training set
        last = trains[-1]
        assert last.finished and last.path("pot.mtp").is_file()
        ts = read_cfg(last.path("ts.cfg"), "Cu=0")
        assert len(ts) == last.quantities["ts_size"] == sum(it["n_added"] for it in iterations)
        assert summary["potential"] == str(last.path("pot.mtp"))
        # provenance is recorded on every run
        rec = last.record
        assert rec.provenance.data["ase"] and rec.job.source_hash
        assert rec.manifest["pot.mtp"][0]  # sha256 of the output

        before = {t: len(wf[t].runs) for t in ("sp_calc", "train", "select", "md_select")}

    # a second start resumes the finished workflow run: identical jobs, nothing recomputed
    again = start(autopot_wf, "--preset", "cu-quick")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    with Workflow(autopot_wf, read_only=True) as wf:
        after = {t: len(wf[t].runs) for t in ("sp_calc", "train", "select", "md_select")}
    assert before == after
