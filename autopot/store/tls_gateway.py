"""ZEO over TCP with mutual TLS, served by the orchestrator itself, for compute nodes.

Why a gateway and not a second server: the FileStorage can be served by one ZEO server
only, and that server already listens on the workflow's Unix socket (the orchestrator,
``autopot runs`` and local tasks use it). The gateway listens on ``host:port`` with TLS,
accepts only clients whose certificate the workflow's own CA signed, and forwards each
connection's bytes to the Unix socket; ZEO's protocol passes through untouched, so
invalidations reach compute-node clients as they reach local ones.

Certificates are made per workflow (``db/tls/``: a CA, a server certificate for the
address, a client certificate for the jobs; every file mode 0600, the directory 0700)
with the X.509 v3 extensions that ZEO's strict verification needs. The address the
gateway listens on is recorded in ``db/tls/address.json``. Only the orchestrator's user
can read the keys; the jobs run as that user on the compute nodes and read them from the
shared filesystem.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import logging
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autopot.errors import StoreError

log = logging.getLogger(__name__)

TLS_DIRNAME = "tls"


@dataclass
class TLSMaterial:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def ensure_certificates(db_dir: Path, host: str, days: int = 365) -> TLSMaterial:
    """The workflow's CA, server and client certificates (made once per host name)."""
    directory = db_dir / TLS_DIRNAME
    material = TLSMaterial(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
        directory / "client.pem",
        directory / "client.key",
    )
    stamp = directory / "host"
    if all(Path(p).is_file() for p in vars(material).values()) and (
        stamp.is_file() and stamp.read_text() == host
    ):
        return material
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise StoreError(
            "serving the database over TLS needs the 'cryptography' package "
            "(pip install cryptography)",
            field="executor.db",
        ) from None
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    now = datetime.datetime.now(datetime.UTC)

    def pem_key(key: Any) -> bytes:
        return bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def builder(subject: str, issuer: Any, public_key: Any) -> Any:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"autopot workflow CA {host}")])
    ca = (
        builder(f"autopot workflow CA {host}", ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    try:
        names: list[Any] = [x509.IPAddress(ipaddress.ip_address(host))]
    except ValueError:
        names = [x509.DNSName(host)]
    for cert_path, key_path, usage, subject in (
        (material.server_cert, material.server_key, ExtendedKeyUsageOID.SERVER_AUTH, host),
        (material.client_cert, material.client_key, ExtendedKeyUsageOID.CLIENT_AUTH, "jobs"),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            builder(subject, ca_name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(key_path, pem_key(key))
        _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    _write_private(material.ca, ca.public_bytes(serialization.Encoding.PEM))
    _write_private(stamp, host.encode())
    return material


class TLSGateway:
    """TCP+TLS listener forwarding to the workflow's ZEO Unix socket (its own thread and
    event loop, so a busy orchestrator loop never stalls a compute node's commit)."""

    def __init__(self, db_dir: Path, socket_path: Path, host: str, port: int = 0):
        self.db_dir = db_dir
        self.socket_path = socket_path
        self.host = host
        self.port = port
        self.material = ensure_certificates(db_dir, host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.material.ca))
        ctx.verify_mode = ssl.CERT_REQUIRED  # mutual: no client certificate, no connection
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        ctx.load_cert_chain(str(self.material.server_cert), str(self.material.server_key))
        return ctx

    def start(self) -> TLSGateway:
        self._thread = threading.Thread(target=self._run, name="autopot TLS gateway", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise StoreError(
                f"cannot serve the database on {self.host}:{self.port}: {self._error}",
                field="executor.db_host",
            )
        _write_private(
            self.db_dir / TLS_DIRNAME / "address.json",
            json.dumps({"host": self.host, "port": self.port, "pid": os.getpid()}).encode(),
        )
        log.info("database served to compute nodes on %s:%d (mutual TLS)", self.host, self.port)
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, ssl=self._context())
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(str(self.socket_path))
        except OSError as exc:  # the server is restarting: the client reconnects by itself
            log.debug("gateway: database socket unavailable: %s", exc)
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(1 << 16):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError, ssl.SSLError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def job_env(self) -> dict[str, str]:
        """What a job needs to connect (see :mod:`autopot.store.task_client`)."""
        return {
            "AUTOPOT_DB_ADDRESS": f"{self.host}:{self.port}",
            "AUTOPOT_TLS_CERT": str(self.material.client_cert),
            "AUTOPOT_TLS_KEY": str(self.material.client_key),
            "AUTOPOT_TLS_CA": str(self.material.ca),
            "AUTOPOT_TLS_SERVER_NAME": self.host,
        }

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        (self.db_dir / TLS_DIRNAME / "address.json").unlink(missing_ok=True)
