"""``autopot archive``: consistent snapshots while the database is in use, restore elsewhere,
verification that catches tampering, extraction that refuses unsafe members."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from autopot.store.database import Store, open_store
from autopot.store.files import sha256_file

from .conftest import autopot, start_background


def runs_json(workflow: Path, task: str) -> list[dict]:
    proc = autopot("runs", task, "-W", str(workflow), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    for row in rows:
        row.pop("directory", None)  # the same relative path; shown as such
    return rows


def extracted_files(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (sha256_file(p), p.stat().st_size)
        for p in root.rglob("*")
        if p.is_file() and p.name != "MANIFEST.json"
    }


def test_archive_with_a_connected_reader_restores_elsewhere(toy: Path, tmp_path: Path) -> None:
    from autopot.store.server import start_server, stop_server

    assert autopot("orchestrator", "start", "-c", str(toy), "--n", "6").returncode == 0
    wf = toy.parent / "autopot-workflow"
    before = runs_json(toy, "work") + runs_json(toy, "collect")
    server = start_server(wf)  # the database is served; a reader holds a connection meanwhile
    try:
        reader = open_store(wf, read_only=True)
        assert reader.zeo
        out = tmp_path / "wf.tar.gz"
        proc = autopot("archive", str(out), "-W", str(toy), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "files" in proc.stdout and "7 runs" in proc.stdout
        assert len(reader.root.task_types["work"].runs) == 6  # the reader is unaffected
        # the same snapshot through the server's protocol (the path for a database on
        # another machine) as from the file: same last transaction, same runs
        remote = tmp_path / "remote.tar.gz"
        proc = autopot(
            "archive",
            str(remote),
            "-W",
            str(wf),
            env={"AUTOPOT_DB_ADDRESS": str(wf / "db" / "zeo.sock")},
        )
        assert proc.returncode == 0, proc.stderr
        reader.close()
    finally:
        stop_server(server.pid)

    verify = autopot("archive", "--verify", str(out))
    assert verify.returncode == 0, verify.stderr
    assert "OK" in verify.stdout
    assert autopot("archive", "--verify", str(remote)).returncode == 0
    with tarfile.open(out) as a, tarfile.open(remote) as b:
        ma, mb = (json.load(t.extractfile("autopot-workflow/MANIFEST.json")) for t in (a, b))
    assert ma["database"]["last_tid"] == mb["database"]["last_tid"]
    assert ma["database"]["runs"] == mb["database"]["runs"]
    assert ma["files"]["db/autopot.fs"] == mb["files"]["db/autopot.fs"]  # byte-identical copies

    dest = tmp_path / "elsewhere"
    restored = autopot("archive", "--extract", str(dest), str(out))
    assert restored.returncode == 0, restored.stderr
    top = dest / "autopot-workflow"
    assert top.is_dir() and (top / "db" / "autopot.fs").is_file()
    # every file's sha256 is the manifest's, and every run file is the original's
    manifest = json.loads((top / "MANIFEST.json").read_text())
    files = {k: (v["sha256"], v["size"]) for k, v in manifest["files"].items()}
    assert extracted_files(top) == files
    for rel, (sha, _) in files.items():
        if rel.startswith("runs/"):
            assert sha256_file(wf / rel) == sha
    assert (top / "source" / "motoko.yaml").is_file() and (
        top / "source" / "tasks" / "work" / "bd.yaml"
    ).is_file()
    assert manifest["versions"]["autopot"] and manifest["database"]["runs"]["work"] == {
        "FINISHED": 6
    }
    # queries work in the new place, with the same answers, and run directories resolve there
    shutil.rmtree(toy.parent)  # the original is gone: nothing may point back to it
    assert runs_json(top, "work") + runs_json(top, "collect") == before
    show = autopot("show", "work.3", "-W", str(top))
    assert show.returncode == 0, show.stderr
    assert f"directory: {top / 'runs' / 'work' / '3'}" in show.stdout


def test_archive_while_the_orchestrator_runs_is_consistent(toy: Path, tmp_path: Path) -> None:
    orchestrator = start_background(toy, "--n", "12", "--sleep", "1.0")
    wf = toy.parent / "autopot-workflow"
    out = tmp_path / "live.tar.gz"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:  # mid-run: some work finished, not all
            if (wf / "db" / "zeo.sock").exists():
                with open_store(wf, read_only=True) as store:
                    types = store.root.task_types
                    done = len(types["work"].by_state.get("FINISHED", ())) if "work" in types else 0
                if done >= 2:
                    break
            time.sleep(0.1)
        proc = autopot("archive", str(out), "-W", str(toy))
        assert proc.returncode == 0, proc.stderr
    finally:
        assert orchestrator.wait(timeout=120) == 0
    assert autopot("archive", "--verify", str(out)).returncode == 0
    dest = tmp_path / "restored"
    assert autopot("archive", "--extract", str(dest), str(out)).returncode == 0
    with Store.open_file(dest / "autopot-workflow" / "db" / "autopot.fs", read_only=True) as snap:
        works = list(snap.root.task_types["work"].runs.values())
        states = {r.state for r in works}
        # a snapshot as of one transaction: the indexes agree with the runs themselves
        for state, ids in snap.root.task_types["work"].by_state.items():
            assert {r.id for r in works if r.state == state} == set(ids)
    assert "FINISHED" in states and not (len(works) == 12 and states == {"FINISHED"}), states
    # and the live workflow carried on to the end, untouched by the archive
    with open_store(wf, read_only=True) as store:
        assert {r.state for r in store.root.task_types["work"].runs.values()} == {"FINISHED"}


def _rewrite(src: Path, dest: Path, change) -> None:
    """Copy a .tar.gz member by member through ``change(info, data) -> (info, data) | None``."""
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dest, "w:gz") as tout:
        for member in tin:
            data = tin.extractfile(member).read() if member.isfile() else None
            result = change(member, data)
            if result is None:
                continue
            info, data = result
            if data is not None:
                info.size = len(data)
            tout.addfile(info, io.BytesIO(data) if data is not None else None)


@pytest.fixture
def small_archive(toy: Path, tmp_path: Path) -> Path:
    assert autopot("orchestrator", "start", "-c", str(toy), "--n", "3").returncode == 0
    out = tmp_path / "small.tar.gz"
    proc = autopot("archive", str(out), "-W", str(toy))
    assert proc.returncode == 0, proc.stderr
    return out


def test_tampered_archive_fails_verify(small_archive: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.tar.gz"

    def flip(info: tarfile.TarInfo, data: bytes | None):
        if info.name.endswith("runs/work/2/result.txt"):
            return info, b"99999"
        return info, data

    _rewrite(small_archive, tampered, flip)
    proc = autopot("archive", "--verify", str(tampered))
    assert proc.returncode == 6  # damaged data
    assert "runs/work/2/result.txt" in proc.stderr and proc.stderr.count("\n") == 1
    # extraction verifies first: nothing is written from a tampered archive
    dest = tmp_path / "out"
    assert autopot("archive", "--extract", str(dest), str(tampered)).returncode == 6
    assert not (dest / "autopot-workflow").exists()

    # a file removed from the archive, and a truncated archive
    missing = tmp_path / "missing.tar.gz"
    _rewrite(
        small_archive,
        missing,
        lambda i, d: None if i.name.endswith("work/1/result.txt") else (i, d),
    )
    proc = autopot("archive", "--verify", str(missing))
    assert proc.returncode == 6 and "work/1/result.txt: missing" in proc.stderr
    # a second member of the same name (extraction would keep the later one)
    doubled = tmp_path / "doubled.tar.gz"
    with tarfile.open(small_archive, "r:gz") as tin:
        members = [(m, tin.extractfile(m).read()) for m in tin]
    with tarfile.open(doubled, "w:gz") as tout:
        (first,) = [m for m, _ in members if m.name.endswith("runs/work/1/result.txt")]
        for m, data in [*members, (first, b"42")]:
            m.size = len(data)
            tout.addfile(m, io.BytesIO(data))
    proc = autopot("archive", "--verify", str(doubled))
    assert proc.returncode == 6 and "duplicate member" in proc.stderr
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(small_archive.read_bytes()[: small_archive.stat().st_size // 2])
    proc = autopot("archive", "--verify", str(truncated))
    assert proc.returncode == 6 and "not a readable archive" in proc.stderr


def _evil_archive(
    path: Path, name: str, *, kind: bytes = tarfile.REGTYPE, linkname: str = ""
) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        manifest = json.dumps({"format": "autopot-archive", "top": "wf", "files": {}}).encode()
        info = tarfile.TarInfo("wf/MANIFEST.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        evil = tarfile.TarInfo(name)
        evil.type = kind
        evil.linkname = linkname
        payload = b"owned"
        evil.size = len(payload) if kind == tarfile.REGTYPE else 0
        tar.addfile(evil, io.BytesIO(payload) if kind == tarfile.REGTYPE else None)
    path.write_bytes(gzip.compress(buf.getvalue()))


@pytest.mark.parametrize(
    "name,kind,linkname,expected",
    [
        ("wf/../../evil.txt", tarfile.REGTYPE, "", "leaves the archive directory"),
        ("/tmp/autopot-evil.txt", tarfile.REGTYPE, "", "absolute path"),
        ("wf/link", tarfile.SYMTYPE, "/etc/passwd", "refusing link member"),
        ("other/evil.txt", tarfile.REGTYPE, "", "outside the archive's top directory"),
    ],
)
def test_malicious_member_is_refused(
    tmp_path: Path, name: str, kind: bytes, linkname: str, expected: str
) -> None:
    evil = tmp_path / "evil.tar.gz"
    _evil_archive(evil, name, kind=kind, linkname=linkname)
    dest = tmp_path / "dest" / "inner"
    for args in (["--verify", str(evil)], ["--extract", str(dest), str(evil)]):
        proc = autopot("archive", *args)
        assert proc.returncode == 6, proc.stdout + proc.stderr
        assert expected in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/autopot-evil.txt").exists()
    assert not dest.exists() or not any(dest.iterdir())


def test_archive_bad_input_is_one_line(small_archive: Path, tmp_path: Path) -> None:
    # no database in the directory
    proc = autopot("archive", str(tmp_path / "x.tar.gz"), "-W", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "no autopot database" in proc.stderr
    # an existing archive is not replaced without --force, and is left intact
    digest = hashlib.sha256(small_archive.read_bytes()).hexdigest()
    proc = autopot("archive", str(small_archive), "-W", str(tmp_path / "toy" / "motoko.yaml"))
    assert proc.returncode == 2 and "exists already" in proc.stderr
    assert hashlib.sha256(small_archive.read_bytes()).hexdigest() == digest
    # a damaged database (its last transaction cut short) is refused, not archived without it
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "toy" / "autopot-workflow", damaged)
    fs = damaged / "db" / "autopot.fs"
    fs.write_bytes(
        fs.read_bytes()[:-10]
    )  # inside the last transaction (its tail length is 8 bytes)
    for name in ("autopot.fs.index", "zeo.sock"):
        (damaged / "db" / name).unlink(missing_ok=True)
    cut = hashlib.sha256(fs.read_bytes()).hexdigest()
    proc = autopot("archive", str(tmp_path / "damaged.tar.gz"), "-W", str(damaged))
    assert proc.returncode == 6 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"{fs}: database file is damaged: truncated" in proc.stderr
    assert not (tmp_path / "damaged.tar.gz").exists() and not list(
        tmp_path.glob(".damaged.tar.gz.*")
    )
    assert hashlib.sha256(fs.read_bytes()).hexdigest() == cut
    # not an archive at all
    junk = tmp_path / "junk.tar.gz"
    junk.write_text("not a tarball\n")
    proc = autopot("archive", "--verify", str(junk))
    assert proc.returncode == 2 and "junk.tar.gz" in proc.stderr and proc.stderr.count("\n") == 1
    # extracting twice into the same place refuses the second time, first copy intact
    dest = tmp_path / "twice"
    assert autopot("archive", "--extract", str(dest), str(small_archive)).returncode == 0
    proc = autopot("archive", "--extract", str(dest), str(small_archive))
    assert proc.returncode == 2 and "exists already" in proc.stderr
    assert runs_json(dest / "autopot-workflow", "work")


def test_full_history_keeps_every_revision(small_archive: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.tar.gz"
    proc = autopot(
        "archive", str(full), "--full-history", "-W", str(tmp_path / "toy" / "motoko.yaml")
    )
    assert proc.returncode == 0, proc.stderr
    assert autopot("archive", "--verify", str(full)).returncode == 0
    manifests = []
    for path in (small_archive, full):
        with tarfile.open(path) as tar:
            manifests.append(json.load(tar.extractfile("autopot-workflow/MANIFEST.json")))
    packed, history = (m["database"] for m in manifests)
    assert (packed["packed"], history["packed"]) == (True, False)
    assert packed["last_tid"] == history["last_tid"] and packed["runs"] == history["runs"]
    # the unpacked copy still holds the older revisions of a run (its state before FINISHED)
    dest = tmp_path / "x"
    assert autopot("archive", "--extract", str(dest), str(full)).returncode == 0
    with Store.open_file(dest / "autopot-workflow" / "db" / "autopot.fs", read_only=True) as store:
        run = store.root.task_types["work"].runs[1]
        revisions = store.db.history(run._p_oid, size=100)
    assert len(revisions) >= 3  # created, submitted, running, finished: several commits
    assert history["transactions"] == packed["transactions"]
    assert (
        manifests[1]["files"]["db/autopot.fs"]["size"]
        > manifests[0]["files"]["db/autopot.fs"]["size"]
    )
