"""``autopot archive``: one .tar.gz holding a workflow for reproducibility, and its checks.

Layout of an archive (everything under one top directory, named after the workflow
directory, so extracting never scatters files)::

    <top>/MANIFEST.json          sha256 and size of every other member, versions, database facts
    <top>/db/autopot.fs          consistent snapshot of the database (see snapshot.py)
    <top>/runs/<task>/<id>/...   every run directory
    <top>/inputs/..., logs/...   everything else of the workflow directory
    <top>/source/...             motoko.yaml, the task templates and the orchestrator module

Restoring is extracting: run directories are stored relative to the workflow directory,
so ``autopot runs -W <dest>/<top>`` works in the new place. Verification recomputes
every sha256 and checks that the database's own record of each run's output files
agrees with the archived files. Extraction refuses absolute paths, ``..``, links and
device members before writing anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from autopot.atomic import atomic_path
from autopot.errors import AutopotError, DamagedDataError

MANIFEST = "MANIFEST.json"
FORMAT = "autopot-archive"
FORMAT_VERSION = 1
#: files up to this size are read whole before archiving, so one that is rewritten
#: meanwhile (a live run's log) is archived as one consistent version
_READ_WHOLE = 64 << 20
#: runtime files that are not part of the record (locks, sockets, server state)
_SKIP_TOP = {"db", "orchestrator.lock"}


class ArchiveError(AutopotError):
    """An archive cannot be written, read, verified or safely extracted."""


class ArchiveDamaged(ArchiveError, DamagedDataError):
    """The archive fails its own checks (hashes, members, manifest, database records)."""


@dataclass
class ArchiveResult:
    path: Path
    top: str
    files: int
    bytes_in: int  # uncompressed bytes of the archived files
    bytes_out: int  # size of the .tar.gz
    database: dict[str, Any]
    seconds: float


@dataclass
class VerifyResult:
    path: Path
    top: str
    files: int
    runs_checked: int  # runs whose recorded output files were compared
    outputs_checked: int
    manifest: dict[str, Any] = field(repr=False, default_factory=dict)


# ---------------------------------------------------------------------- creating
def create_archive(
    workflow_dir: str | Path,
    out: str | Path,
    *,
    motoko: str | Path | None = None,
    pack: bool = True,
    overwrite: bool = False,
    compresslevel: int = 6,
) -> ArchiveResult:
    """Archive a workflow directory (live or finished) into ``out`` (.tar.gz), atomically."""
    from autopot.store.files import iter_files
    from autopot.store.records import package_versions
    from autopot.store.snapshot import snapshot_database
    from autopot.store.workflow_records import require_database

    t0 = time.monotonic()
    directory = Path(workflow_dir).resolve()
    require_database(directory)
    out = Path(out).resolve()
    if out.exists() and not overwrite:
        raise ArchiveError("archive exists already (use --force to replace it)", file=out)
    if not out.parent.is_dir():
        raise ArchiveError("directory of the archive does not exist", file=out.parent)
    top = directory.name
    files: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="autopot-archive-") as scratch:
        # Database first: files of runs that end afterwards are newer than their record,
        # never the other way round.
        snap = snapshot_database(directory, Path(scratch) / "db" / "autopot.fs", pack=pack)
        with atomic_path(out, suffix=".part") as tmp:  # renamed into place only when complete
            with (
                open(tmp, "wb") as raw,
                tarfile.open(
                    fileobj=raw, mode="w:gz", compresslevel=compresslevel, format=tarfile.PAX_FORMAT
                ) as tar,
            ):
                _add_file(tar, snap.path, f"{top}/db/autopot.fs", files, top)
                skip = {out, tmp}
                for path in iter_files(directory):
                    rel = path.relative_to(directory)
                    if rel.parts[0] in _SKIP_TOP or path in skip or path.name.endswith(".part"):
                        continue
                    _add_file(tar, path, f"{top}/{rel.as_posix()}", files, top)
                if motoko is not None:
                    for path, arcname in _source_files(Path(motoko)):
                        _add_file(tar, path, f"{top}/source/{arcname}", files, top)
                manifest = {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "host": socket.gethostname(),
                    "workflow_dir": str(directory),
                    "top": top,
                    "versions": package_versions(),
                    "database": snap.to_dict(),
                    "files": files,
                }
                data = json.dumps(manifest, indent=1, sort_keys=True).encode()
                info = tarfile.TarInfo(f"{top}/{MANIFEST}")
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
                tar.addfile(info, io.BytesIO(data))
    return ArchiveResult(
        path=out,
        top=top,
        files=len(files),
        bytes_in=sum(f["size"] for f in files.values()),
        bytes_out=out.stat().st_size,
        database=snap.to_dict(),
        seconds=time.monotonic() - t0,
    )


def _add_file(
    tar: tarfile.TarFile, path: Path, arcname: str, files: dict[str, dict[str, Any]], top: str
) -> None:
    """Add one regular file, hashing exactly the bytes that go into the archive."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:  # removed since the directory walk (a live run cleaning up)
        return
    except OSError as exc:
        raise ArchiveError(f"cannot read: {exc.strerror}", file=path) from None
    with fh:
        st = os.fstat(fh.fileno())
        info = tarfile.TarInfo(arcname)
        info.mtime, info.mode = int(st.st_mtime), st.st_mode & 0o777
        digest = hashlib.sha256()
        if st.st_size <= _READ_WHOLE:
            data = fh.read()
            digest.update(data)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        else:  # large (e.g. a finished VASP WAVECAR): streamed, exactly st_size bytes
            info.size = st.st_size
            tar.addfile(info, _Hashing(fh, digest))
    files[arcname[len(top) + 1 :]] = {"sha256": digest.hexdigest(), "size": info.size}


class _Hashing(io.RawIOBase):
    """File wrapper that hashes what tarfile reads from it."""

    def __init__(self, fh: IO[bytes], digest: Any):
        self.fh, self.digest = fh, digest

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.digest.update(data)
        return data


def _source_files(motoko: Path) -> list[tuple[Path, str]]:
    """motoko.yaml, every task template directory and the orchestrator module."""
    from autopot.engine.motoko import MotokoConfig, load_module

    config = MotokoConfig.load(motoko)
    base = config.path.parent
    out = [(config.path, "motoko.yaml")]
    dirs = [m.template for m in config.task_managers.values()]
    for template in dirs:
        for path in sorted(
            p for p in template.rglob("*") if p.is_file() and "__pycache__" not in p.parts
        ):
            out.append((path, _relative_name(path, base)))
    if config.orchestrator:
        module = load_module(config.orchestrator.rpartition(".")[0], base, config.path)
        if getattr(module, "__file__", None):
            out.append((Path(module.__file__), _relative_name(Path(module.__file__), base)))
    return out


def _relative_name(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:  # a template outside the motoko.yaml directory
        return f"external/{path.parent.name}/{path.name}"


# ---------------------------------------------------------------------- checking
def check_member(member: tarfile.TarInfo, top: str | None = None) -> str:
    """The member's path if it is safe to extract; ArchiveError otherwise."""
    name = member.name
    pure = PurePosixPath(name)
    if name.startswith(("/", "\\")) or pure.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise ArchiveDamaged(f"refusing member with an absolute path: {name!r}", field="member")
    if ".." in pure.parts or "\\" in name:
        raise ArchiveDamaged(
            f"refusing member that leaves the archive directory: {name!r}", field="member"
        )
    if not (member.isfile() or member.isdir()):
        kind = "link" if (member.issym() or member.islnk()) else "special file"
        raise ArchiveDamaged(f"refusing {kind} member {name!r}", field="member")
    if top is not None and pure.parts[0] != top:
        raise ArchiveDamaged(
            f"member {name!r} is outside the archive's top directory {top!r}", field="member"
        )
    return name


def verify_archive(path: str | Path) -> VerifyResult:
    """Recompute every sha256; check the manifest and the database's output records."""
    path = Path(path)
    hashes, manifest, top, db_bytes = _read_archive(path)
    problems: list[str] = []
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ArchiveDamaged("manifest has no file list", file=path, field=MANIFEST)
    for rel, entry in sorted(files.items()):
        got = hashes.get(rel)
        if got is None:
            problems.append(f"{rel}: missing")
        elif got != (entry.get("sha256"), entry.get("size")):
            problems.append(f"{rel}: sha256 or size differs from the manifest")
    problems += [f"{rel}: not in the manifest" for rel in sorted(set(hashes) - set(files))]
    runs_checked = outputs_checked = 0
    if db_bytes is None:
        problems.append("db/autopot.fs: missing")
    else:
        runs_checked, outputs_checked, db_problems = _check_database(db_bytes, hashes, manifest)
        problems += db_problems
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ArchiveDamaged(f"verification failed: {problems[0]}{more}", file=path)
    return VerifyResult(
        path=path,
        top=top,
        files=len(hashes),
        runs_checked=runs_checked,
        outputs_checked=outputs_checked,
        manifest=manifest,
    )


def _read_archive(
    path: Path,
) -> tuple[dict[str, tuple[str, int]], dict[str, Any], str, bytes | None]:
    """One streaming pass: (rel path -> (sha256, size), manifest, top, database bytes)."""
    hashes: dict[str, tuple[str, int]] = {}
    manifest: dict[str, Any] | None = None
    db_bytes: bytes | None = None
    top: str | None = None
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                if top is None:
                    top = PurePosixPath(member.name).parts[0] if member.name else ""
                check_member(member, top)
                if not member.isfile():
                    continue
                rel = member.name[len(top) + 1 :]
                if rel in hashes or (rel == MANIFEST and manifest is not None):
                    # tar lets a later member replace an earlier one on extraction
                    raise ArchiveDamaged(
                        f"refusing duplicate member {member.name!r}", field="member"
                    )
                fh = tar.extractfile(member)
                assert fh is not None
                if rel == MANIFEST:
                    try:
                        manifest = json.loads(fh.read())
                    except ValueError as exc:
                        raise ArchiveDamaged(
                            f"manifest is not JSON: {exc}", file=path, field=MANIFEST
                        ) from None
                    continue
                digest = hashlib.sha256()
                keep = rel == "db/autopot.fs"
                chunks = []
                while block := fh.read(1 << 20):
                    digest.update(block)
                    if keep:
                        chunks.append(block)
                if keep:
                    db_bytes = b"".join(chunks)
                hashes[rel] = (digest.hexdigest(), member.size)
    except FileNotFoundError:
        raise ArchiveError("archive not found", file=path) from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        # no gzip/tar header at all: the wrong file was given (bad input); anything later
        # (cut short, bad CRC) is a damaged archive
        cls = ArchiveError if isinstance(exc, tarfile.ReadError) and top is None else ArchiveDamaged
        raise cls(f"not a readable archive: {type(exc).__name__}: {exc}", file=path) from None
    except ArchiveError as exc:
        if exc.file is None:
            raise type(exc)(exc.message, file=path, field=exc.field) from None
        raise
    if manifest is None or top is None:
        raise ArchiveDamaged(f"no {MANIFEST}: not an autopot archive", file=path)
    if manifest.get("format") != FORMAT or manifest.get("top") != top:
        raise ArchiveDamaged("manifest does not describe this archive", file=path, field=MANIFEST)
    return hashes, manifest, top, db_bytes


def _check_database(
    db_bytes: bytes, hashes: dict[str, tuple[str, int]], manifest: dict[str, Any]
) -> tuple[int, int, list[str]]:
    """Open the archived database; compare each run's recorded outputs with the archived files."""
    from autopot.store.database import Store
    from autopot.store.snapshot import run_counts
    from autopot.store.workflow_records import WorkflowRecords

    problems: list[str] = []
    runs_checked = outputs_checked = 0
    with tempfile.TemporaryDirectory(prefix="autopot-verify-") as scratch:
        fs = Path(scratch) / "autopot.fs"
        fs.write_bytes(db_bytes)
        try:
            store = Store.open_file(fs, read_only=True)
        except AutopotError as exc:
            return 0, 0, [f"db/autopot.fs: {exc.message}"]
        try:
            records = WorkflowRecords(Path(scratch), store)
            for task in records.task_names():
                for run in records.runs(task, all_workflow_runs=True):
                    outputs = run.extra.get("outputs") or []
                    if not run.directory or run.state != "FINISHED" or not outputs:
                        continue
                    runs_checked += 1
                    for out in outputs:
                        recorded = run.manifest.get(out)
                        rel = f"{run.directory}/{out}"
                        if recorded is None:
                            continue
                        outputs_checked += 1
                        if rel not in hashes:
                            problems.append(f"{rel}: output of {run.label} missing")
                        elif hashes[rel][0] != recorded[0]:
                            problems.append(
                                f"{rel}: differs from what the database recorded for {run.label}"
                            )
            expected = manifest.get("database", {}).get("runs")
            if expected is not None and run_counts(store.root) != expected:
                problems.append("db/autopot.fs: run counts differ from the manifest")
        finally:
            store.close()
    return runs_checked, outputs_checked, problems


# ---------------------------------------------------------------------- extracting
def extract_archive(
    path: str | Path, dest: str | Path, *, progress: Callable[[str], None] | None = None
) -> Path:
    """Verify, then extract into ``dest``; returns the restored workflow directory."""
    result = verify_archive(path)
    dest = Path(dest).resolve()
    target = dest / result.top
    if target.exists():
        raise ArchiveError(
            "destination exists already; extract elsewhere or remove it", file=target
        )
    dest.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{result.top}.", suffix=".partial", dir=dest))
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                check_member(member, result.top)  # verified already; checked again on the way out
                if progress is not None and member.isfile():
                    progress(member.name)
                tar.extract(member, partial, filter="data")
        os.replace(partial / result.top, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    (target / MANIFEST).chmod(0o644)
    (target / "db").chmod(0o700)  # as a workflow's own db directory: owner only
    return target
