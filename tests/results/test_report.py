"""autopot.results.report on a real finished demo, a failed toy workflow and a doctored copy.

The demo is the shared session fixture (one cu-quick run); each report here is built
once per module and checked against the database it was built from.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autopot.results.report import FIGURES, Report, build_report
from autopot.results.source import open_records

from .conftest import TOY, autopot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``directory`` with its size and mtime: what "nothing written" means."""
    return {
        p.relative_to(directory).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def workflow_dir(finished_demo: Path) -> Path:
    return finished_demo.parent / "autopot-workflow"


@pytest.fixture(scope="module")
def demo_report(workflow_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Report:
    before = snapshot(workflow_dir)
    out = tmp_path_factory.mktemp("report") / "nested" / "out"  # created by build_report
    with open_records(workflow_dir) as records:
        report = build_report(records, out, html=True)
    assert snapshot(workflow_dir) == before, "the report wrote into the workflow directory"
    return report


def train_runs(workflow_dir: Path) -> list[dict[str, Any]]:
    """The train runs as plain data, read independently of the report."""
    with open_records(workflow_dir) as records:
        return [
            {
                "label": r.label,
                "state": r.state,
                "directory": r.directory,
                "context": dict(r.job.params["context"]),
                "q": dict(r.quantities),
            }
            for r in records.runs("train")
        ]


def check_png(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500, image.shape
    rgb = image[..., :3].reshape(-1, 3)
    assert rgb.std(axis=0).max() > 0.05  # not a blank page
    packed = (rgb * 255).astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.uint32)
    assert len(np.unique(packed)) > 20  # lines, text, colours: not a flat picture


def test_every_figure_is_a_real_png(demo_report: Report) -> None:
    assert demo_report.skipped == {}
    assert list(demo_report.figures) == list(FIGURES)
    for name, path in demo_report.figures.items():
        assert path == demo_report.out_dir / f"{name}.png"
        check_png(path)


def test_out_dir_holds_only_the_report(demo_report: Report) -> None:
    names = sorted(p.name for p in demo_report.out_dir.iterdir())
    assert names == sorted([f"{n}.png" for n in FIGURES] + ["report.html", "summary.json"])


def test_iterations_table_matches_the_database(demo_report: Report, workflow_dir: Path) -> None:
    from autopot.mtp.cfg import read_cfg

    trains = train_runs(workflow_dir)
    rows = demo_report.tables["iterations"]
    assert len(rows) == len(trains) >= 3
    for row, run in zip(rows, trains, strict=True):
        q = run["q"]
        assert (row["train"], row["state"], row["stage"]) == (
            run["label"],
            "FINISHED",
            run["context"]["stage"],
        )
        assert row["ts_size"] == q["ts_size"] and row["ts_added"] == q["ts_added"]
        assert row["energy_rmse_meV_per_atom"] == pytest.approx(q["energy_rmse_per_atom"] * 1000)
        assert row["forces_mae_meV_per_A"] == pytest.approx(q["forces_mae"] * 1000)
        assert row["stress_rmse_GPa"] == pytest.approx(q["stress_rmse"])
    assert [r["label"] for r in rows][:2] == ["calc_ts", "sel 10"]  # cu-quick: grades 10 then 2
    assert rows[-1]["label"].startswith("md ")
    for prev, row in zip(rows, rows[1:], strict=False):  # each size = previous + added
        assert row["ts_size"] == prev["ts_size"] + row["ts_added"]
    last_ts = workflow_dir / trains[-1]["directory"] / "ts.cfg"
    assert rows[-1]["ts_size"] == len(read_cfg(last_ts, "Cu=0"))


def test_parity_reproduces_the_recorded_training_errors(
    demo_report: Report, workflow_dir: Path
) -> None:
    """Same potential, same training set, same backend: the re-evaluation must give the
    errors train recorded. They agree bit for bit today; 1e-8 relative allows for another
    summation order (threads) but would catch a wrong file, unit or per-atom division."""
    last = train_runs(workflow_dir)[-1]["q"]
    parity = {row["quantity"]: row for row in demo_report.tables["parity"]}
    assert set(parity) == {"energy per atom", "force components", "stress components"}
    energy = parity["energy per atom"]
    assert energy["n"] == last["ts_size"]
    assert energy["rmse"] == pytest.approx(last["energy_rmse_per_atom"] * 1000, rel=1e-8)
    assert energy["recorded_rmse"] == pytest.approx(energy["rmse"], rel=1e-8)
    assert parity["force components"]["rmse"] == pytest.approx(last["forces_rmse"] * 1000, rel=1e-8)
    assert parity["stress components"]["rmse"] == pytest.approx(last["stress_rmse"], rel=1e-8)
    assert parity["stress components"]["n"] == 6 * last["ts_size"]


def test_selection_and_tasks_tables_match_the_database(
    demo_report: Report, workflow_dir: Path
) -> None:
    with open_records(workflow_dir) as records:
        selects = [
            (r.label, r.quantities["n_selected"], r.job.params["grade"])
            for r in records.runs("select")
        ]
        mds = [(r.label, r.quantities["n_collected"]) for r in records.runs("md_select")]
        runs = {t: records.runs(t) for t in ("sp_calc", "select", "md_select", "train")}
        walls = {t: sum(r.ended - r.started for r in rs) for t, rs in runs.items()}
    rows = {r["run"]: r for r in demo_report.tables["selection"]}
    assert list(rows) == [s[0] for s in selects] + [m[0] for m in mds]
    for label, n_selected, grade in selects:
        assert (rows[label]["n_selected"], rows[label]["threshold"]) == (n_selected, grade)
    for label, n_collected in mds:
        assert rows[label]["n_collected"] == n_collected and rows[label]["threshold"] == 2.0
    assert rows[mds[-1][0]]["n_collected"] == 0  # converged: the last MD found nothing
    tasks = {r["task"]: r for r in demo_report.tables["tasks"]}
    assert list(tasks)[:4] == ["sp_calc", "select", "md_select", "train"]
    # then the simulations of the validation stage, recorded in the same workflow run
    from autopot.simulate.tasks import TASKS

    assert set(list(tasks)[4:]) <= set(TASKS)
    for task, rs in runs.items():
        assert tasks[task]["runs"] == tasks[task]["FINISHED"] == len(rs)
        assert tasks[task]["total_wall_s"] == pytest.approx(walls[task])


def test_workflow_paths_are_relative_to_the_workflow_dir(
    demo_report: Report, workflow_dir: Path
) -> None:
    wf = demo_report.workflow
    last = train_runs(workflow_dir)[-1]
    assert wf["converged"] is True and wf["reference_calls"] == sum(
        r["q"]["ts_added"] for r in train_runs(workflow_dir)
    )
    assert (
        wf["potential"] == f"{last['directory']}/pot.mtp"
        and not Path(wf["potential"]).is_absolute()
    )
    assert wf["training_set"] == f"{last['directory']}/ts.cfg"
    assert (workflow_dir / wf["potential"]).is_file() and wf["last_train"] == last["label"]


def test_summary_json_is_plain_data_of_the_report(demo_report: Report) -> None:
    data = json.loads(demo_report.summary_json.read_text())
    assert data["workflow"] == demo_report.workflow
    assert data["tables"] == demo_report.tables
    assert data["figures"] == {n: f"{n}.png" for n in FIGURES}
    assert data["html"] == "report.html" and data["skipped"] == {}
    assert data["autopot_version"]


def test_html_is_one_self_contained_page(demo_report: Report) -> None:
    assert demo_report.html is not None
    page = demo_report.html.read_text()
    assert page.count('src="data:image/png;base64,') == len(FIGURES)
    for forbidden in ('src="http', "<link", "<script", "url("):
        assert forbidden not in page
    first = page.split('src="data:image/png;base64,', 1)[1].split('"', 1)[0]
    assert base64.b64decode(first)[:8] == PNG_SIGNATURE
    for text in ("workflow run &#x27;default&#x27;", "train.1", "md_select.1", "Parity"):
        assert text in page


def test_text_summary(demo_report: Report) -> None:
    text = demo_report.text()
    rows = demo_report.tables["iterations"]
    assert "converged" in text and demo_report.workflow["potential"] in text
    for row in rows:
        assert row["train"] in text
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(rows[-1]["train"] + " "))
    assert f"{rows[-1]['energy_rmse_meV_per_atom']:.3f}" in line


def test_no_parity_skips_it_and_removes_a_stale_figure(workflow_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "parity.png").write_bytes(b"stale")
    with open_records(workflow_dir) as records:
        report = build_report(records, tmp_path, parity=False)
    assert "parity" in report.skipped and not (tmp_path / "parity.png").exists()
    assert report.html is None and not (tmp_path / "report.html").exists()
    assert report.tables["parity"] == [] and set(report.figures) == set(FIGURES) - {"parity"}


def test_failed_toy_workflow_still_reports(tmp_path: Path) -> None:
    """No train, select or md_select run at all, one failed task, workflow FAILED."""
    toy = tmp_path / "toy"
    shutil.copytree(TOY, toy, ignore=shutil.ignore_patterns("autopot-workflow", "__pycache__"))
    proc = autopot(
        "orchestrator",
        "start",
        "-c",
        str(toy / "motoko.yaml"),
        "--n",
        "3",
        "--fail",
        "1",
        timeout=120,
    )
    assert proc.returncode != 0, proc.stdout + proc.stderr
    with open_records(toy / "autopot-workflow") as records:
        report = build_report(records, tmp_path / "out", html=True)
    assert set(report.skipped) == {"ts_size", "errors", "parity", "grades"}
    assert report.skipped["ts_size"] == "no train run in this workflow run"
    assert "no FINISHED train run" in report.skipped["parity"]
    assert (
        report.tables["iterations"] == report.tables["selection"] == report.tables["parity"] == []
    )
    (work,) = report.tables["tasks"]
    assert (work["task"], work["runs"], work["FINISHED"], work["FAILED"]) == ("work", 4, 3, 1)
    check_png(report.figures["walltime"])
    assert report.workflow["state"] == "FAILED" and report.workflow["potential"] is None
    page = report.html.read_text() if report.html else ""
    assert "skipped: no train run in this workflow run" in page
    assert "skipped: no FINISHED train run" in report.text()
    json.loads(report.summary_json.read_text())


def test_failed_last_train_and_unusable_backend(workflow_dir: Path, tmp_path: Path) -> None:
    """A copy of the demo where the latest train run failed and the last finished one names
    an mlp binary that does not exist: tables and figures still come, parity says why not."""
    from autopot.store.database import open_store

    copy = tmp_path / "wf"
    shutil.copytree(workflow_dir, copy)
    n_trains = len(train_runs(workflow_dir))

    def doctor(root: Any) -> None:
        task_type = root.task_types["train"]
        last = task_type.runs[max(task_type.by_run_name["default"])]
        last.params = {
            **last.params,
            "mtp_backend": {"name": "mlp", "binary": str(tmp_path / "no-mlp")},
        }
        failed = task_type.add_run(last.job, dict(last.params), "default", None)
        failed.set_state("RUNNING")
        failed.set_state("FAILED", cause="simulated failure")

    with open_store(copy) as store:
        store.transact(doctor)
    with open_records(copy) as records:
        report = build_report(records, tmp_path / "out", html=True)
    rows = report.tables["iterations"]
    assert len(rows) == n_trains + 1 and rows[-1]["state"] == "FAILED"
    assert rows[-1]["ts_size"] is None and rows[-1]["energy_rmse_meV_per_atom"] is None
    assert report.workflow["last_train"] == f"train.{n_trains}"
    assert report.workflow["latest_train"] == f"train.{n_trains + 1} FAILED"
    assert set(report.skipped) == {"parity"}
    assert (
        f"cannot evaluate train.{n_trains}" in report.skipped["parity"]
        and "no-mlp" in report.skipped["parity"]
    )
    assert not any(
        p.name.startswith(".") for p in (tmp_path / "out").iterdir()
    )  # mlp scratch removed
    for name in ("ts_size", "errors"):
        check_png(report.figures[name])
    data = json.loads(report.summary_json.read_text())
    assert all(
        v is None or not (isinstance(v, float) and math.isnan(v))
        for v in data["tables"]["iterations"][-1].values()
    )


def test_report_cli_prints_tables_and_writes_the_page(workflow_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-report"
    proc = autopot("report", "-W", str(workflow_dir), "-o", str(out), "--html")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "Iterations (one row per train run)" in text and "Parity of the last potential" in text
    for name in FIGURES:
        assert f"{name}.png" in text and (out / f"{name}.png").is_file()
    assert (out / "report.html").is_file() and json.loads((out / "summary.json").read_text())[
        "tables"
    ]
    with open_records(workflow_dir) as records:
        last = records.last_train().label
    assert last in text
    bad = autopot(
        "report", "-W", str(workflow_dir), "--run-name", "nope", "-o", str(tmp_path / "x")
    )
    assert (
        bad.returncode == 2
        and "no workflow run 'nope'" in bad.stderr
        and bad.stderr.count("\n") == 1
    )
