"""ZEO over TCP with mutual TLS, end to end: throw-away CA, server and client certificates."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from pathlib import Path

import pytest

from autopot.errors import StoreError
from autopot.store.database import Store
from autopot.store.records import create_runs, get_run
from autopot.store.schema import TaskSchema
from autopot.store.server import TLSFiles, start_server, stop_server

x509 = pytest.importorskip("cryptography.x509")


def _certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it.

    ZEO verifies with VERIFY_X509_STRICT, so the CA needs key usage and key identifiers.
    """
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    out: dict[str, Path] = {}

    def save(name: str, key, cert) -> None:
        out[f"{name}_key"] = directory / f"{name}.key"
        out[f"{name}_key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        out[name] = directory / f"{name}.pem"
        out[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def builder(subject: str, issuer, public_key):
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "autopot test CA")])
    ca = (
        builder("autopot test CA", ca_name, ca_key.public_key())
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
    save("ca", ca_key, ca)
    for name, usage in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            builder(name, ca_name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        save(name, key, cert)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mutual_tls_over_tcp(tmp_path: Path, template: Path) -> None:
    certs = _certificates(tmp_path)
    port = _free_port()
    handle = start_server(
        tmp_path / "wf",
        address=f"127.0.0.1:{port}",
        tls=TLSFiles(certs["server"], certs["server_key"], certs["ca"]),
    )
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(certs["ca"]))
        ctx.load_cert_chain(str(certs["client"]), str(certs["client_key"]))
        schema = TaskSchema.load(template)
        with Store.open_zeo(("127.0.0.1", port), ssl=ctx, ssl_server_hostname="127.0.0.1") as store:
            assert store.zeo
            store.transact(lambda root: create_runs(root, schema, {"cfg_fname": "a.cfg"}))
            store.transact(lambda root: get_run(root, "sp_calc.1").push("energy", -1.5))
        with Store.open_zeo(f"127.0.0.1:{port}", ssl=ctx, ssl_server_hostname="127.0.0.1") as store:
            assert get_run(store.root, "sp_calc.1").quantities == {"energy": -1.5}
        # no client certificate: the server refuses the handshake
        anonymous = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(certs["ca"]))
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
