"""Compute nodes without the orchestrator's host: every task is a SLURM job whose process
runs in its own network namespace (a veth pair on a private address, made and removed
here), so nothing but the run directory — mode (a) — or ZEO over TCP with mutual TLS
served by the orchestrator — mode (b) — can carry its results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from autopot.store.database import open_store

pytestmark = pytest.mark.slurm

OUTAGE = Path(__file__).resolve().parents[1] / "engine" / "outage"
N = 4


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def netns() -> Iterator[tuple[str, str, str]]:
    """(namespace, host address, namespace address) of a fresh veth pair."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    tag = uuid.uuid4().hex[:6]
    ns, host_if, ns_if = f"autopot-{tag}", f"ap{tag}h", f"ap{tag}n"
    octet = int(tag[:2], 16) % 200 + 20
    host_addr, ns_addr = f"10.231.{octet}.1", f"10.231.{octet}.2"
    try:
        _ip("netns", "add", ns)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", ns)
        _ip("addr", "add", f"{host_addr}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", ns, "addr", "add", f"{ns_addr}/30", "dev", ns_if)
        _ip("-n", ns, "link", "set", ns_if, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
    except (subprocess.CalledProcessError, OSError) as exc:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"cannot create a network namespace here: {exc}")
    try:
        yield ns, host_addr, ns_addr
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _workflow(tmp_path: Path, ns: str, executor: str) -> Path:
    dest = tmp_path / "wf"
    shutil.copytree(OUTAGE, dest, ignore=shutil.ignore_patterns("autopot-workflow", "__pycache__"))
    motoko = dest / "motoko.yaml"
    motoko.write_text(motoko.read_text().replace("executor: {name: local}", executor))
    for task in ("work", "collect"):
        # the task process runs in the namespace; it records where it ran
        (dest / "tasks" / task / "run.sh").write_text(
            "#!/bin/sh\n"
            f"exec ip netns exec {ns} sh -c "
            "'ip -o -4 addr show > netns.txt; exec \"${AUTOPOT_PYTHON:-python3}\" doIt.py'\n"
        )
    return motoko


def _run(motoko: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autopot.cli", "orchestrator", "start", "-c", str(motoko)]
        + ["--n", str(N), "--sleep", "0.5"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


def _check(motoko: Path, ns_addr: str) -> list[dict]:
    wf = motoko.parent / "autopot-workflow"
    with open_store(wf, read_only=True) as store:
        works = list(store.root.task_types["work"].runs.values())
        (collect,) = store.root.task_types["collect"].runs.values()
        assert all(r.state == "FINISHED" and r.executor == "slurm" for r in works)
        assert collect.state == "FINISHED", collect.cause
        assert collect.quantities["values"] == [i * i for i in range(N)]
        assert sorted(float(r.quantities["vec"].sum()) for r in works) == [
            3.0 * i for i in range(N)
        ]
        dirs = [wf / r.directory for r in [*works, collect]]
    for d in dirs:
        assert ns_addr in (d / "netns.txt").read_text()  # it ran in the namespace
    return [json.loads((d / "autopot_run.json").read_text()) for d in dirs]


def test_mode_a_no_database_access_from_jobs(
    slurm: None, netns: tuple[str, str, str], tmp_path: Path
) -> None:
    ns, _, ns_addr = netns
    motoko = _workflow(tmp_path, ns, "executor: {name: slurm, poll_interval: 0.3}")
    proc = _run(motoko)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    markers = _check(motoko, ns_addr)
    assert all(m["db"] == "none" and not m["db_address"] for m in markers)
    with open_store(motoko.parent / "autopot-workflow", read_only=True) as store:
        runs = [*store.root.task_types["work"].runs.values()]
        assert {r.extra.get("outcome_by") for r in runs} == {"orchestrator"}  # from the files


def test_mode_b_zeo_over_mutual_tls_served_by_the_orchestrator(
    slurm: None, netns: tuple[str, str, str], tmp_path: Path
) -> None:
    pytest.importorskip("cryptography")
    ns, host_addr, ns_addr = netns
    motoko = _workflow(
        tmp_path,
        ns,
        f"executor: {{name: slurm, poll_interval: 0.3, db: tls, db_host: {host_addr}}}",
    )
    proc = _run(motoko)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"database served to compute nodes on {host_addr}:" in proc.stderr
    markers = _check(motoko, ns_addr)
    assert all(m["db"] == "tcp" and not m["db_address"] for m in markers)
    wf = motoko.parent / "autopot-workflow"
    with open_store(wf, read_only=True) as store:  # every result came over the live connection
        runs = [*store.root.task_types["work"].runs.values()]
        runs += [*store.root.task_types["collect"].runs.values()]
        assert {r.extra.get("outcome_by") for r in runs} == {"task"}
    tls = wf / "db" / "tls"
    assert oct(tls.stat().st_mode & 0o777) == "0o700"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in tls.iterdir())
    assert not (tls / "address.json").exists()  # removed when the orchestrator ends
