"""A SLURM job reaches the database over ZEO on TCP with mutual TLS (the multi-node
configuration: ``db_address`` + ``tls`` executor options). The socket-in-the-run-directory
configuration is exercised by the toy workflow's collect task (test_engine_toy.py)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from autopot.errors import ExecutorError
from autopot.executors.base import RunSpec
from autopot.executors.slurm import SlurmExecutor
from autopot.store.files import write_marker
from autopot.store.schema import TaskSchema
from autopot.store.task_client import client_ssl_context

from .conftest import Harness

pytestmark = pytest.mark.slurm
TOY_WORK = Path(__file__).resolve().parents[1] / "engine" / "toy" / "tasks" / "work"

DO_IT = """\
import json
from pathlib import Path

from autopot.store.task_client import open_task_store
from autopot.task import TaskContext

marker = json.loads(Path("autopot_run.json").read_text())
store = open_task_store()  # AUTOPOT_DB_ADDRESS=host:port, AUTOPOT_TLS_CERT/KEY/CA
with TaskContext(store, marker["task"], marker["run_id"], Path.cwd(), Path(marker["workflow_dir"])) as ctx:
    ctx.push("reached_by", store.description)
"""


def make_pki(d: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (openssl CLI)."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    # X.509 v3 extensions throughout: ZEO's contexts verify with VERIFY_X509_STRICT
    (d / "ca.ext").write_text(
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\n"
    )
    leaf = (
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    (d / "server.ext").write_text(
        leaf + "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    (d / "client.ext").write_text(leaf + "extendedKeyUsage=clientAuth\n")
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=autopot test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.csr",
    )
    run(
        "x509",
        "-req",
        "-in",
        "ca.csr",
        "-signkey",
        "ca.key",
        "-days",
        "2",
        "-out",
        "ca.crt",
        "-extfile",
        "ca.ext",
    )
    for name in ("server", "client"):
        run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN=autopot {name}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
        )
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            f"{name}.crt",
            "-extfile",
            f"{name}.ext",
        )
    return {n: d / n for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_slurm_job_reaches_zeo_over_tcp_with_mutual_tls(slurm: None, tmp_path: Path) -> None:
    from autopot.store.database import Store
    from autopot.store.records import create_runs
    from autopot.store.server import TLSFiles, start_server, stop_server

    pki = make_pki(tmp_path)
    wf = tmp_path / "wf"
    address = f"127.0.0.1:{free_port()}"
    server = start_server(
        wf, address=address, tls=TLSFiles(pki["server.crt"], pki["server.key"], pki["ca.crt"])
    )
    env = {
        "AUTOPOT_TLS_CERT": str(pki["client.crt"]),
        "AUTOPOT_TLS_KEY": str(pki["client.key"]),
        "AUTOPOT_TLS_CA": str(pki["ca.crt"]),
    }
    try:
        store = Store.open_zeo(
            address, ssl=client_ssl_context(env), ssl_server_hostname="127.0.0.1"
        )
        schema = TaskSchema.load(TOY_WORK)
        ((run, _),) = store.transact(
            lambda root: [(r.id, c) for r, c in create_runs(root, schema, {"i": 7})]
        )
        run_dir = wf / "runs" / "work" / str(run)
        run_dir.mkdir(parents=True)
        (run_dir / "doIt.py").write_text(DO_IT)
        (run_dir / "run.sh").write_text('#!/bin/sh\nexec "$AUTOPOT_PYTHON" doIt.py\n')
        # the marker names no database: the job learns it from the executor's environment
        write_marker(
            run_dir, {"workflow_dir": str(wf), "db_address": "", "task": "work", "run_id": run}
        )
        spec = RunSpec("work", run, f"work.{run}", run_dir, {"AUTOPOT_PYTHON": sys.executable})

        async def scenario() -> Harness:
            h = Harness(
                db_address=address,
                tls={
                    "certificate": str(pki["client.crt"]),
                    "key": str(pki["client.key"]),
                    "ca": str(pki["ca.crt"]),
                },
            )
            await h.executor.submit([spec])
            await h.wait_final([spec.label], timeout=90)
            await h.executor.close()
            return h

        h = asyncio.run(scenario())
        final = h.final(spec.label)
        assert final.state == "FINISHED", (final, (run_dir / "stderr.log").read_text())
        store.sync()
        record = store.root.task_types["work"].runs[run]
        assert record.state == "FINISHED"
        assert record.quantities["reached_by"] == str(("127.0.0.1", int(address.split(":")[1])))
        store.close()
    finally:
        stop_server(server.pid)


def test_tls_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match="tls needs db_address"):
        SlurmExecutor(lambda o: None, tls={"certificate": "a", "key": "b", "ca": "c"})
    with pytest.raises(ExecutorError, match="TLS file not found"):
        SlurmExecutor(
            lambda o: None,
            db_address="10.0.0.1:8100",
            tls={"certificate": str(tmp_path / "nope.crt"), "key": "k", "ca": "c"},
        )
    with pytest.raises(ExecutorError, match="expected host:port"):
        SlurmExecutor(lambda o: None, db_address="/tmp/zeo.sock")
