"""ZEO over TCP with mutual TLS, end to end: throw-away CA, server and client certificates."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from autopot.errors import StoreError
from autopot.store.database import Store
from autopot.store.records import create_runs, get_run
from autopot.store.schema import TaskSchema
from autopot.store.server import TLSFiles, start_server, stop_server
from autopot.store.tls_gateway import ensure_certificates

x509 = pytest.importorskip("cryptography.x509")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mutual_tls_over_tcp(tmp_path: Path, template: Path) -> None:
    # the certificates a workflow makes for itself (what the orchestrator's gateway serves)
    certs = ensure_certificates(tmp_path, "127.0.0.1")
    port = _free_port()
    handle = start_server(
        tmp_path / "wf",
        address=f"127.0.0.1:{port}",
        tls=TLSFiles(certs.server_cert, certs.server_key, certs.ca),
    )
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(certs.ca))
        ctx.load_cert_chain(str(certs.client_cert), str(certs.client_key))
        schema = TaskSchema.load(template)
        with Store.open_zeo(("127.0.0.1", port), ssl=ctx, ssl_server_hostname="127.0.0.1") as store:
            assert store.zeo
            store.transact(lambda root: create_runs(root, schema, {"cfg_fname": "a.cfg"}))
            store.transact(lambda root: get_run(root, "sp_calc.1").push("energy", -1.5))
        with Store.open_zeo(f"127.0.0.1:{port}", ssl=ctx, ssl_server_hostname="127.0.0.1") as store:
            assert get_run(store.root, "sp_calc.1").quantities == {"energy": -1.5}
        # no client certificate: the server refuses the handshake
        anonymous = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(certs.ca))
        with pytest.raises(StoreError, match="cannot connect to database server"):
            Store.open_zeo(
                ("127.0.0.1", port), ssl=anonymous, ssl_server_hostname="127.0.0.1", timeout=2
            )
        # plain TCP to a TLS server: refused as well
        with pytest.raises(StoreError, match="cannot connect to database server"):
            Store.open_zeo(("127.0.0.1", port), timeout=2)
    finally:
        stop_server(handle.pid)


def test_tls_files_must_exist(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="tls.certificate: TLS file not found"):
        start_server(
            tmp_path / "wf",
            address="127.0.0.1:9",
            tls=TLSFiles(tmp_path / "no.pem", tmp_path / "no.key", tmp_path / "ca.pem"),
        )
