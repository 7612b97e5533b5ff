"""Opening the database — embedded FileStorage or a ZEO server — and transactions.

One API for both: :class:`Store`. The embedded FileStorage is the default for a single
process (queries, benches); as soon as several processes need the database (task
processes pushing results while the orchestrator runs), the orchestrator serves the same
file with ZEO on a Unix socket inside the workflow directory, and :func:`open_store`
connects there automatically when that server is alive.

Every write goes through :meth:`Store.transact`, which retries on ZODB conflicts with a
bounded, jittered backoff and aborts on any other error, so a crash or a bad value never
leaves a half-written run.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from autopot.errors import DatabaseUnreachable, StoreError

log = logging.getLogger(__name__)

#: The one timeout for an unreachable database server (seconds): how long opening the
#: store, a commit in an open connection, and a running orchestrator wait for a server
#: that went away to come back before giving up (exit 5, infrastructure failure).
RECONNECT_TIMEOUT_ENV = "AUTOPOT_DB_RECONNECT_TIMEOUT"
DEFAULT_RECONNECT_TIMEOUT = 60.0


def reconnect_timeout() -> float:
    """``$AUTOPOT_DB_RECONNECT_TIMEOUT`` or 60 s."""
    try:
        return float(os.environ.get(RECONNECT_TIMEOUT_ENV, DEFAULT_RECONNECT_TIMEOUT))
    except ValueError:
        return DEFAULT_RECONNECT_TIMEOUT


T = TypeVar("T")

DB_DIRNAME = "db"
DB_FILENAME = "autopot.fs"
SOCKET_NAME = "zeo.sock"
RUNS_DIRNAME = "runs"


class WorkflowPaths:
    """Where runtime state lives inside a workflow directory (never in the checkout)."""

    def __init__(self, directory: str | Path):
        self.root = Path(directory).resolve()

    @property
    def db_dir(self) -> Path:
        return self.root / DB_DIRNAME

    @property
    def db_file(self) -> Path:
        return self.db_dir / DB_FILENAME

    @property
    def socket(self) -> Path:
        return self.db_dir / SOCKET_NAME

    @property
    def server_pid(self) -> Path:
        return self.db_dir / "zeo.pid"

    @property
    def server_log(self) -> Path:
        return self.db_dir / "zeo.log"

    @property
    def runs_dir(self) -> Path:
        return self.root / RUNS_DIRNAME

    @staticmethod
    def relative_run_dir(task: str, run_id: int) -> Path:
        """``runs/<task>/<id>``: what a run record stores (relative, so archives move)."""
        return Path(RUNS_DIRNAME) / task / str(run_id)

    def run_dir(self, task: str, run_id: int) -> Path:
        return self.root / self.relative_run_dir(task, run_id)

    @staticmethod
    def parse_run_path(path: str | Path) -> tuple[str, int, str] | None:
        """``.../runs/<task>/<id>/<file>`` → (task, id, file), from any copy of a workflow
        directory (recorded paths are absolute and may point elsewhere now); else None."""
        parts = Path(path).parts
        if len(parts) >= 4 and parts[-4] == RUNS_DIRNAME and parts[-2].isdigit():
            return parts[-3], int(parts[-2]), parts[-1]
        return None

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"


def disconnected(exc: BaseException) -> bool:
    """The database server went away under a client (it stopped, restarted, or the
    connection broke): the caller may wait and read again."""
    from ZEO.Exceptions import ClientDisconnected

    return isinstance(exc, ClientDisconnected | ConnectionError)


def socket_alive(path: str | Path) -> bool:
    """True when a server accepts connections on the Unix socket ``path``."""
    path = str(path)
    if not os.path.exists(path):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(path)
    except OSError:
        return False
    finally:
        s.close()
    return True


def parse_address(address: str | tuple[str, int] | Path) -> str | tuple[str, int]:
    """``/path/sock`` → Unix socket; ``host:port`` or ``(host, port)`` → TCP."""
    if isinstance(address, tuple):
        return address
    text = str(address)
    if "/" in text or text.endswith(".sock"):
        return text
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise StoreError(
            f"cannot parse server address {text!r}; use PATH or HOST:PORT", field="address"
        )
    return (host or "127.0.0.1", int(port))


class Store:
    """A connection to the autopot database, with retrying transactions.

    Not thread-safe: one Store per thread (the asyncio loop thread owns the engine's).
    """

    def __init__(self, db: Any, *, description: str, zeo: bool, read_only: bool = False):
        import transaction

        self.db = db
        self.description = description
        self.zeo = zeo
        self.read_only = read_only
        #: how long a write waits for a lost ZEO server to come back before failing
        self.reconnect_timeout = reconnect_timeout()
        self.tm = transaction.TransactionManager(explicit=False)
        self.conn = db.open(transaction_manager=self.tm)
        self._listeners: list[Callable[[bytes, Any], None]] = []
        self._ensure_root()

    # ---------------------------------------------------------------- opening
    @classmethod
    def open_file(cls, path: str | Path, *, read_only: bool = False, create: bool = True) -> Store:
        """Open an embedded FileStorage.

        A writable open locks the file against other processes. ``read_only`` takes no
        lock, so it works while another process writes the file (a snapshot as of the
        opening: reopen to see later commits; through ZEO, ``sync()`` is enough).
        """
        import zc.lockfile
        from ZODB import DB
        from ZODB.FileStorage import FileStorage
        from ZODB.POSException import POSError

        path = Path(path)
        if not path.exists():
            if read_only or not create:
                raise StoreError("database file does not exist", file=path)
            # owner-only: the database holds every result; other users cannot even list it
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fs_log = logging.getLogger("ZODB.FileStorage")
        level = fs_log.level
        if read_only:  # a live writer's index lags: rebuilt quietly, not "Ignoring index" on stderr
            fs_log.setLevel(logging.ERROR)
        try:
            storage = FileStorage(str(path), read_only=read_only)
        except zc.lockfile.LockError:
            raise StoreError(
                "database is locked by another process (an orchestrator or server is using it; "
                "query through its ZEO socket or stop it)",
                file=path,
            ) from None
        except (POSError, ValueError, OSError, EOFError) as exc:
            raise StoreError(
                f"cannot open database: {type(exc).__name__}: {exc}", file=path
            ) from None
        finally:
            fs_log.setLevel(level)
        try:
            db = DB(storage, pool_size=4, cache_size=20000)
        except Exception as exc:  # noqa: BLE001 - any failure here is a broken file
            storage.close()
            raise StoreError(
                f"cannot open database: {type(exc).__name__}: {exc}", file=path
            ) from None
        return cls(db, description=str(path), zeo=False, read_only=read_only)

    @classmethod
    def open_zeo(
        cls,
        address: str | tuple[str, int] | Path,
        *,
        read_only: bool = False,
        timeout: float | None = None,
        ssl: Any = None,
        ssl_server_hostname: str | None = None,
        wait: float | None = None,
    ) -> Store:
        """Connect to a ZEO server, waiting for one that is restarting as commits do.

        ``wait`` (default :func:`reconnect_timeout`) bounds the wait for a Unix socket
        to answer; ``timeout`` (default the same) bounds ZEO's own connection wait. A
        server that does not come back is a :class:`DatabaseUnreachable` (exit 5).
        """
        from ZEO.ClientStorage import ClientStorage
        from ZODB import DB

        addr = parse_address(address)
        wait = reconnect_timeout() if wait is None else wait
        timeout = wait if timeout is None else timeout
        if isinstance(addr, str):
            # a socket of a server that ran here (its file or config is left) may be
            # restarting: wait for it; a path no server ever used fails at once
            if not (os.path.exists(addr) or (Path(addr).parent / "zeo.conf").exists()):
                wait = 0.0
            deadline = time.monotonic() + wait
            while not socket_alive(addr):
                if time.monotonic() >= deadline:
                    raise DatabaseUnreachable(
                        f"no database server is listening on this socket (waited {wait:.0f} s)",
                        file=addr,
                    )
                time.sleep(0.1)
        try:
            storage = ClientStorage(
                addr,
                wait_timeout=max(timeout, 0.1),
                read_only=read_only,
                ssl=ssl,
                ssl_server_hostname=ssl_server_hostname,
                client_label=f"autopot-{os.getpid()}",
            )
        except Exception as exc:  # noqa: BLE001 - ZEO raises several types for a dead server
            raise DatabaseUnreachable(
                f"cannot connect to database server: {type(exc).__name__}: {exc}", file=str(addr)
            ) from None
        _forget_prefetched_oids_on_reconnect(storage)
        db = DB(storage, pool_size=4, cache_size=20000)
        store = cls(db, description=str(addr), zeo=True, read_only=read_only)
        store._hook_invalidations()
        return store

    def _ensure_root(self) -> None:
        from autopot.store.model import Root

        root = self.conn.root()
        if "autopot" in root:
            if not self.read_only:
                self._ensure_value_index()
            return
        if self.read_only:
            raise StoreError("database is empty (no autopot data)", file=self.description)

        def create(_: Any) -> None:
            r = self.conn.root()
            if "autopot" not in r:
                r["autopot"] = Root()

        self.transact(create, note="create autopot root")

    def _ensure_value_index(self) -> None:
        """Index the parameters and quantities of a database written before the value
        index existed, once, on its first writable open (one transaction; no run or job
        record is rewritten). Read-only opens scan instead. A failure here is logged and
        leaves the database as it was: queries then keep scanning."""
        from autopot.store import value_index

        self.tm.begin()
        missing = [t.name for t in value_index.task_types_without_index(self.root)]
        self.tm.abort()
        if not missing:
            return
        log.info("building the query index of %s (task types %s)", self.description, missing)
        t0 = time.monotonic()
        try:
            n = self.transact(value_index.build, note="build query index")
        except Exception as exc:  # noqa: BLE001 - the store stays usable, queries scan
            log.warning("query index not built (%s): %s", self.description, exc)
            return
        log.info("query index built: %d runs in %.1f s", n, time.monotonic() - t0)

    # ---------------------------------------------------------------- invalidations
    def _hook_invalidations(self) -> None:
        """Forward ZEO's pushed invalidations to listeners (called from ZEO's IO thread).

        ZEO's ClientStorage calls ``invalidate(tid, oids)`` on the DB's MVCC adapter for
        every transaction another client commits; we wrap that bound method so the engine
        learns about committed state changes within milliseconds instead of polling.
        """
        adapter = self.db._mvcc_storage
        original = adapter.invalidate

        def invalidate(tid: bytes, oids: Any) -> None:
            original(tid, oids)
            for listener in list(self._listeners):
                try:
                    listener(tid, oids)
                except Exception:  # noqa: BLE001 - a listener must never break ZEO's thread
                    log.exception("invalidation listener failed")

        adapter.invalidate = invalidate

    def add_invalidation_listener(self, callback: Callable[[bytes, Any], None]) -> None:
        """``callback(tid, oids)`` runs in ZEO's thread: hand work to your loop thread-safely."""
        if not self.zeo:
            raise StoreError("invalidation events need a ZEO connection", file=self.description)
        self._listeners.append(callback)

    # ---------------------------------------------------------------- transactions
    @property
    def root(self) -> Any:
        """The :class:`autopot.store.model.Root` object (as of the current transaction)."""
        return self.conn.root()["autopot"]

    def sync(self) -> None:
        """Start a fresh read view so committed changes of other processes are seen."""
        self.tm.abort()
        self.tm.begin()

    def transact(
        self,
        fn: Callable[..., T],
        *args: Any,
        retries: int = 50,
        note: str = "",
        **kwargs: Any,
    ) -> T:
        """Run ``fn(root, *args, **kwargs)`` in a transaction and commit it.

        Conflicts (another process committed the same objects) are retried from a fresh
        view, and so is a lost ZEO connection once the client has reconnected (a server
        restart does not fail task processes); any other exception aborts the
        transaction — nothing half-done is stored — and propagates. After ``retries`` conflicts a StoreError says so (never swallowed).
        """
        from ZODB.POSException import ConflictError, ReadOnlyError

        if self.read_only:
            raise StoreError("database opened read-only", file=self.description)
        delay = 0.001
        for attempt in range(retries + 1):
            self.tm.begin()
            try:
                result = fn(self.conn.root().get("autopot"), *args, **kwargs)
                if note:
                    self.tm.get().note(note)
                self.tm.commit()
                return result
            except ConflictError as exc:
                self.tm.abort()
                if attempt == retries:
                    raise StoreError(
                        f"gave up after {retries} write conflicts ({note or fn.__name__}): {exc}",
                        file=self.description,
                    ) from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.2)
            except ReadOnlyError:
                self.tm.abort()
                raise StoreError("database opened read-only", file=self.description) from None
            except BaseException as exc:
                self.tm.abort()
                if not self._is_disconnect(exc) or attempt == retries:
                    raise
                # The server went away (restart, network blip): nothing was committed.
                # ClientStorage reconnects by itself; wait for it, then redo the work.
                self._wait_connected()
        raise AssertionError("unreachable")

    def _is_disconnect(self, exc: BaseException) -> bool:
        if not self.zeo:
            return False
        from ZEO.Exceptions import ClientDisconnected

        return isinstance(exc, ClientDisconnected)

    def _wait_connected(self) -> None:
        """Block until ZEO has reconnected, or raise a StoreError after ``reconnect_timeout``."""
        storage = self.db.storage
        deadline = time.monotonic() + self.reconnect_timeout
        while not storage.is_connected():
            if time.monotonic() > deadline:
                raise DatabaseUnreachable(
                    f"database server unreachable for {self.reconnect_timeout:.0f} s",
                    file=self.description,
                )
            time.sleep(0.05)

    @property
    def connected(self) -> bool:
        """False while a ZEO server is unreachable (an embedded file is always there)."""
        return not self.zeo or bool(self.db.storage.is_connected())

    def close(self) -> None:
        try:
            self.tm.abort()
            self.conn.close()
        finally:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _forget_prefetched_oids_on_reconnect(storage: Any) -> None:
    """ZEO clients prefetch batches of new object ids from the server. A server killed
    with SIGKILL forgets the batches it handed out, and after its restart it hands the
    same ids to other clients; a client still using its old batch would then create
    objects whose ids are taken ("A different object already has the same oid"). So a
    reconnected client asks afresh."""
    original = storage.notify_connected

    def notify_connected(conn: Any, info: Any) -> None:
        storage._oids = []
        original(conn, info)

    storage.notify_connected = notify_connected


def open_store(
    directory: str | Path,
    *,
    address: str | None = None,
    read_only: bool = False,
    create: bool = True,
) -> Store:
    """Open the database of a workflow directory: its ZEO server if one is alive, else the file.

    ``address`` (or ``$AUTOPOT_DB_ADDRESS``) forces a ZEO server (Unix path or host:port).
    """
    address = address or os.environ.get("AUTOPOT_DB_ADDRESS")
    if address:
        return Store.open_zeo(address, read_only=read_only)
    paths = WorkflowPaths(directory)
    if socket_alive(paths.socket):
        return Store.open_zeo(str(paths.socket), read_only=read_only)
    return Store.open_file(paths.db_file, read_only=read_only, create=create)
