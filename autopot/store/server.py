"""The ZEO database server of a workflow directory: start, stop, serve.

Why a separate process: the FileStorage can be opened by one process only; task
processes (local or on compute nodes) and ``autopot runs`` during a workflow all need it,
so the orchestrator serves it with ZEO. By default on a Unix socket inside the workflow
directory with mode 0600 (only the owner can connect); on TCP only when asked, and then
with mutual TLS (ZEO's SSL support), for compute nodes that share no filesystem socket.

``python -m autopot.store.server --config zeo.conf`` is the server process itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from autopot.errors import StoreError
from autopot.store.database import WorkflowPaths, parse_address, socket_alive


@dataclass
class TLSFiles:
    """Mutual TLS: the server's certificate and key, and the CA that signs clients."""

    certificate: Path
    key: Path
    ca: Path

    def check(self) -> None:
        for name in ("certificate", "key", "ca"):
            path = Path(getattr(self, name))
            if not path.is_file():
                raise StoreError("TLS file not found", file=path, field=f"tls.{name}")


@dataclass
class ServerHandle:
    pid: int
    address: str | tuple[str, int]
    log: Path


def server_config(
    db_file: Path, address: str | tuple[str, int], pid_file: Path, tls: TLSFiles | None
) -> str:
    """ZConfig text for runzeo: one FileStorage, a transaction timeout, optional TLS."""
    if isinstance(address, tuple):
        addr = f"{address[0]}:{address[1]}"
    else:
        addr = address
    ssl = ""
    if tls is not None:
        ssl = (
            "  <ssl>\n"
            f"    certificate {tls.certificate}\n"
            f"    key {tls.key}\n"
            f"    authenticate {tls.ca}\n"
            "  </ssl>\n"
        )
    # transaction-timeout: a client that dies in the middle of a commit must not hold
    # the commit lock forever (the other task processes would hang).
    return (
        "<zeo>\n"
        f"  address {addr}\n"
        f"  pid-filename {pid_file}\n"
        "  transaction-timeout 30\n"
        f"{ssl}"
        "</zeo>\n"
        "<filestorage 1>\n"
        f"  path {db_file}\n"
        "</filestorage>\n"
    )


def start_server(
    directory: str | Path,
    *,
    address: str | None = None,
    tls: TLSFiles | None = None,
    wait: float = 20.0,
) -> ServerHandle:
    """Start a ZEO server for a workflow directory in the background; return when it listens."""
    paths = WorkflowPaths(directory)
    paths.db_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    addr = parse_address(address) if address else str(paths.socket)
    if isinstance(addr, tuple) and tls is None and addr[0] not in ("127.0.0.1", "localhost", "::1"):
        raise StoreError(
            "a TCP server reachable from other hosts needs TLS (--tls-cert/--tls-key/--tls-ca)",
            field="address",
        )
    if tls is not None:
        tls.check()
    if isinstance(addr, str) and socket_alive(addr):
        raise StoreError("a database server is already listening here", file=addr)
    _ensure_database(paths)
    conf = paths.db_dir / "zeo.conf"
    conf.write_text(server_config(paths.db_file, addr, paths.server_pid, tls))
    log = open(paths.server_log, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "autopot.store.server", "--config", str(conf)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives the terminal; stopped by PID
        close_fds=True,
    )
    log.close()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = paths.server_log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            raise StoreError(
                f"database server exited with {proc.returncode}: {tail[0]}", file=paths.server_log
            )
        if _listening(addr):
            return ServerHandle(proc.pid, addr, paths.server_log)
        time.sleep(0.02)
    proc.kill()
    raise StoreError(f"database server did not listen within {wait:.0f} s", file=paths.server_log)


def _listening(addr: str | tuple[str, int]) -> bool:
    if isinstance(addr, str):
        return socket_alive(addr)
    import socket

    try:
        with socket.create_connection(addr, timeout=0.5):
            return True
    except OSError:
        return False


def _ensure_database(paths: WorkflowPaths) -> None:
    """Create the file and its root before serving, and fail here if it is corrupt or locked."""
    from autopot.store.database import Store

    Store.open_file(paths.db_file).close()


def server_pid(directory: str | Path) -> int | None:
    """PID of the live server of a workflow directory, or None."""
    pid_file = WorkflowPaths(directory).server_pid
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def remove_stale_server_files(directory: str | Path) -> None:
    """Remove the PID file and socket of a server that is gone (killed with SIGKILL, the
    machine rebooted), so that they mislead neither ``status`` nor the next start. A
    socket that still answers, or a PID file naming a live process, is left alone."""
    paths = WorkflowPaths(directory)
    if server_pid(directory) is None:
        paths.server_pid.unlink(missing_ok=True)
    if paths.socket.exists() and not socket_alive(paths.socket):
        paths.socket.unlink(missing_ok=True)


def stop_server(pid: int, timeout: float = 10.0) -> None:
    """Stop a server by PID: SIGTERM (runzeo closes the storage cleanly), SIGKILL if stuck."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            finished = 0
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        if finished == pid:
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)


def _main(argv: list[str]) -> None:
    """Server process entry: owner-only files and socket, then ZEO's runzeo."""
    os.umask(0o177)  # socket and database files: mode 0600
    from ZEO import runzeo

    runzeo.main(["-C" if a == "--config" else a for a in argv])


if __name__ == "__main__":
    _main(sys.argv[1:])
