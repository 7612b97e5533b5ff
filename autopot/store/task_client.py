"""How a task process reaches the database from a compute node: ``AUTOPOT_DB_ADDRESS``
(host:port) with mutual TLS from ``AUTOPOT_TLS_CERT/KEY/CA``, which the SLURM executor
sets. The store owns its connections; executors only pass the environment along.
"""

from __future__ import annotations

import os
from typing import Any


def client_ssl_context(environ: dict[str, str] | None = None) -> Any:
    """The client SSL context a task builds from ``AUTOPOT_TLS_CERT/KEY/CA`` (None if unset)."""
    import ssl

    env = os.environ if environ is None else environ
    if not env.get("AUTOPOT_TLS_CA"):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=env["AUTOPOT_TLS_CA"])
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT  # as ZEO's server side does
    if env.get("AUTOPOT_TLS_CERT"):
        ctx.load_cert_chain(env["AUTOPOT_TLS_CERT"], env.get("AUTOPOT_TLS_KEY") or None)
    return ctx


def open_task_store(address: str | None = None) -> Any:
    """Open the database from a SLURM job: ``AUTOPOT_DB_ADDRESS``, with TLS when configured."""
    from autopot.store.database import Store, parse_address

    address = address or os.environ["AUTOPOT_DB_ADDRESS"]
    addr = parse_address(address)
    ctx = client_ssl_context() if isinstance(addr, tuple) else None
    hostname = os.environ.get("AUTOPOT_TLS_SERVER_NAME") or (
        addr[0] if isinstance(addr, tuple) else None
    )
    return Store.open_zeo(addr, ssl=ctx, ssl_server_hostname=hostname if ctx else None)
