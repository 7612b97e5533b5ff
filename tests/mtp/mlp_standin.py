"""A stand-in for MLIP-2's ``mlp`` binary, used ONLY at the process boundary in tests.

This is not MLIP-2 and never pretends a run succeeded for inputs it does not know:

* **replay** (always on): for the exact recorded inputs of ``../shared/data/mlp`` (sha256 of
  every input file, ``Feature`` lines aside) and the recorded (or MLIP-2 default) option
  values, it writes the recorded output files and prints the recorded stdout, as the real
  binary did.  Features of the input configurations are carried into the outputs, as MLIP-2
  does (select_add tags candidates with ``autopot_index`` and reads it back).
* **emulate** (only when the environment has ``AUTOPOT_MLP_STANDIN=emulate``): for other
  inputs it runs autopot's own motep implementation of the same command with mlp's CLI
  semantics — same positional arguments and options, same output files (including
  ``state.als`` and, for select-add, ``selected.cfg`` in the cwd unless an option names
  them), the same stdout report format — so a whole workflow can run through the mlp
  backend's code path where no binary exists.

Anything else — an unknown command or option, a missing input, a wrong option value, an
unrecorded input in replay mode — prints ``ERROR: ...`` and exits non-zero, so a wrong
argument, path or parse in the backend fails the test.  ``state.als`` written here is a
marker file, not MLIP-2's binary format (the backend never reads it).
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mlp"
MODE_ENV = "AUTOPOT_MLP_STANDIN"
CALLS_ENV = "AUTOPOT_MLP_STANDIN_CALLS"  # optional: append each command line to this file

#: the options each command accepts (MLIP-2's names), with MLIP-2's default values for the
#: ones whose value the recordings depend on
OPTIONS = {
    "train": {
        "max-iter",
        "bfgs-conv-tol",
        "energy-weight",
        "force-weight",
        "stress-weight",
        "trained-pot-name",
        "skip-preinit",
    },
    "calc-efs": set(),
    "calc-grade": {"als-filename"},
    "select-add": {"select-threshold", "selection-limit", "als-filename", "selected-filename"},
    "calc-errors": set(),
}
NARGS = {"train": 2, "calc-efs": 3, "calc-grade": 4, "select-add": 4, "calc-errors": 2}
MLP_DEFAULTS = {
    "energy-weight": 1.0,
    "force-weight": 0.01,
    "stress-weight": 0.001,
    "bfgs-conv-tol": 1e-3,
    "select-threshold": 1.1,
}


class Refused(Exception):
    """Printed as ``ERROR: ...``; the process exits non-zero."""


def content_hash(path: str | Path) -> str:
    """sha256 of a file without its ``Feature`` lines (the tags autopot adds)."""
    try:
        lines = Path(path).read_bytes().splitlines(keepends=True)
    except OSError as exc:
        raise Refused(f"cannot read {path}: {exc.strerror}") from None
    return hashlib.sha256(
        b"".join(ln for ln in lines if not ln.lstrip().startswith(b"Feature"))
    ).hexdigest()


def _h(name: str) -> str:
    return content_hash(DATA / name)


def recordings() -> list[dict]:
    """What the real binary was run with (README of the data folder) and wrote."""
    pot06, untrained = _h("out/pot06.mtp"), _h("untrained_06.mtp")
    train, test, cands = _h("train.cfg"), _h("test.cfg"), _h("candidates.cfg")
    return [
        {
            "cmd": "train",
            "inputs": [untrained, train],
            "options": {"max-iter": 200},
            "outputs": {"trained-pot-name": "out/pot06.mtp"},
            "stdout": "out/train.stdout.txt",
        },
        {
            "cmd": "calc-efs",
            "inputs": [pot06, test],
            "options": {},
            "outputs": {2: "out/efs.cfg"},
            "stdout": None,
        },
        {
            "cmd": "calc-grade",
            "inputs": [pot06, train, cands],
            "options": {},
            "outputs": {3: "out/grades.cfg"},
            "stdout": "out/calc-grade.stdout.txt",
        },
        {
            "cmd": "select-add",
            "inputs": [pot06, train, cands],
            "options": {},
            "outputs": {3: "out/diff.cfg"},
            "stdout": "out/select-add.stdout.txt",
        },
        {
            "cmd": "select-add",
            "inputs": [pot06, train, cands],
            "options": {"select-threshold": 10.0},
            "outputs": {3: "out/diff10.cfg"},
            "stdout": "out/select-add-10.stdout.txt",
        },
        {
            "cmd": "calc-errors",
            "inputs": [pot06, test],
            "options": {},
            "outputs": {},
            "stdout": "out/calc-errors.stdout.txt",
        },
    ]


def parse_argv(argv: list[str]) -> tuple[str, list[str], dict[str, str]]:
    """mlp's command line: ``cmd args... --key=value --flag``; unknown names refused."""
    if not argv:
        raise Refused("no command")
    cmd, rest = argv[0], argv[1:]
    if cmd not in OPTIONS:
        raise Refused(f"unknown command {cmd!r}")
    args = [a for a in rest if not a.startswith("--")]
    opts: dict[str, str] = {}
    for a in rest:
        if a.startswith("--"):
            key, _, value = a[2:].partition("=")
            if key not in OPTIONS[cmd]:
                raise Refused(f"{cmd}: unknown option --{key}")
            opts[key] = value
    if len(args) != NARGS[cmd]:
        raise Refused(f"{cmd}: expected {NARGS[cmd]} arguments, got {len(args)}: {args}")
    return cmd, args, opts


def _num(opts: dict[str, str], key: str) -> float | None:
    if key not in opts:
        return None
    try:
        return float(opts[key])
    except ValueError:
        raise Refused(f"--{key}: not a number: {opts[key]!r}") from None


def _value(opts: dict[str, str], key: str) -> float:
    """An option's value, or MLIP-2's default for it."""
    value = _num(opts, key)
    return float(MLP_DEFAULTS[key]) if value is None else value


def _inputs(cmd: str, args: list[str]) -> list[str]:
    n_in = {"train": 2, "calc-efs": 2, "calc-grade": 3, "select-add": 3, "calc-errors": 2}[cmd]
    for path in args[:n_in]:
        if not Path(path).is_file():
            raise Refused(f"cannot open {path}")
    return args[:n_in]


def _options_match(rec: dict, opts: dict[str, str]) -> bool:
    """Values the output depends on equal the recorded ones, or MLIP-2's defaults."""
    for key in (
        "max-iter",
        "bfgs-conv-tol",
        "energy-weight",
        "force-weight",
        "stress-weight",
        "select-threshold",
        "selection-limit",
        "skip-preinit",
    ):
        want = rec["options"].get(key, MLP_DEFAULTS.get(key))
        if key not in opts:
            if key in rec["options"]:
                return False
            continue
        if key == "skip-preinit" or want is None:
            return False
        if abs(_num(opts, key) - float(want)) > 1e-12 * max(1.0, abs(float(want))):
            return False
    return True


def find_recording(cmd: str, args: list[str], opts: dict[str, str]) -> dict | None:
    hashes = [content_hash(p) for p in _inputs(cmd, args)]
    if not (DATA / "out").is_dir():  # no recordings here: nothing can be replayed
        return None
    for rec in recordings():
        if rec["cmd"] == cmd and rec["inputs"] == hashes and _options_match(rec, opts):
            return rec
    return None


# -- cfg text helpers (replay: carry input features into recorded outputs) ---------------
def _blocks(text: str) -> list[str]:
    out, cur = [], []
    for line in text.splitlines(keepends=True):
        cur.append(line)
        if line.strip() == "END_CFG":
            out.append("".join(cur))
            cur = []
    if cur and out:  # blank lines after the last configuration
        out[-1] += "".join(cur)
    return out


def _features(block: str) -> list[str]:
    return [ln for ln in block.splitlines(keepends=True) if ln.lstrip().startswith("Feature")]


def _positions(block: str) -> list[tuple[float, float, float]]:
    """Cartesian positions of a configuration (mlp rounds them to 6 decimals on output)."""
    lines, keep, out = block.splitlines(), False, []
    for ln in lines:
        tok = ln.split()
        if tok and tok[0] in ("AtomData:", "Energy", "PlusStress:", "Feature", "END_CFG"):
            keep = tok[0] == "AtomData:"
            continue
        if keep and len(tok) >= 5:
            out.append((float(tok[2]), float(tok[3]), float(tok[4])))
    return out


def _source_features(block: str, inputs: list[str]) -> list[str]:
    """Features of the input configuration ``block`` was written from (same positions)."""
    import numpy as np

    pos = np.array(_positions(block))
    for cand in inputs:
        other = np.array(_positions(cand))
        if other.shape == pos.shape and np.abs(other - pos).max(initial=0.0) <= 2e-6:
            return _features(cand)
    raise Refused("an output configuration matches no input configuration")


def _with_features(block: str, features: list[str]) -> str:
    have = set(_features(block))
    extra = "".join(f for f in features if f not in have)
    end = block.rstrip().rfind("END_CFG")
    return block[:end] + extra + block[end:]


def _write(path: str | Path, text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise Refused(f"cannot write {path}: {exc.strerror}") from None


def replay(rec: dict, cmd: str, args: list[str], opts: dict[str, str]) -> None:
    if rec["stdout"]:
        sys.stdout.write((DATA / rec["stdout"]).read_text())
    for where, name in rec["outputs"].items():
        target = opts.get(where, "Trained.mtp_") if isinstance(where, str) else args[where]
        text = (DATA / name).read_text()
        if name.endswith(".cfg"):
            src = _blocks(Path(args[-2]).read_text())
            text = "".join(_with_features(b, _source_features(b, src)) for b in _blocks(text))
        _write(target, text)
    _side_files(cmd, args, opts, selected=None)


def _side_files(cmd: str, args: list[str], opts: dict[str, str], selected: str | None) -> None:
    """``state.als`` (and ``selected.cfg``) where mlp writes them: the cwd by default."""
    if cmd not in ("calc-grade", "select-add"):
        return
    _write(
        opts.get("als-filename") or "state.als",
        "autopot mlp stand-in: MLIP-2's binary active set is not reproduced\n",
    )
    if cmd == "select-add":
        if selected is None:  # replay: the training set plus the recorded selection
            selected = Path(args[1]).read_text() + Path(args[3]).read_text()
        _write(opts.get("selected-filename") or "selected.cfg", selected)


# -- emulation with autopot's motep implementation ---------------------------------------
def _types(pot: str) -> dict[str, int]:
    """A mapping for the potential's type indices (element names are irrelevant to mlp)."""
    from ase.data import chemical_symbols

    from autopot.mtp.mtpfile import read_mtp

    n = int(read_mtp(pot).species_count)
    return {chemical_symbols[t + 1]: t for t in range(n)}


def emulate(cmd: str, args: list[str], opts: dict[str, str]) -> None:
    from autopot.mtp.backend import MotepBackend
    from autopot.mtp.cfg import read_cfg, write_cfg
    from autopot.mtp.error_report import compute_errors, format_mlp_errors

    pot = args[0]
    types = _types(pot)
    be = MotepBackend(n_jobs=1)
    if cmd == "train":
        print(f"MTPR from {pot}, Database: {args[1]}")
        max_iter = int(_num(opts, "max-iter") or 1000)
        out = opts.get("trained-pot-name") or "Trained.mtp_"
        res = be.train(
            pot,
            args[1],
            out,
            atom_types=types,
            max_iter=max_iter,
            conv_tol=_value(opts, "bfgs-conv-tol"),
            energy_weight=_value(opts, "energy-weight"),
            force_weight=_value(opts, "force-weight"),
            stress_weight=_value(opts, "stress-weight"),
            lls="skip-preinit" not in opts,
            save_active_set=False,
        )
        print(f"BFGS iterations count set to {max_iter}")
        for k in range(res.iterations or 0):
            print(f"BFGS iter {k}")
        print("\n\t\t* * * TRAIN ERRORS * * *\n")
        sys.stdout.write(format_mlp_errors(res.errors))
    elif cmd == "calc-efs":
        write_cfg(args[2], be.calc_efs(pot, args[1], types), types)
    elif cmd == "calc-errors":
        print(f"MTPR from {pot}, Database: {args[1]}\n\n\t\t* * * TRAIN ERRORS * * *\n")
        ref = read_cfg(args[1], types)
        sys.stdout.write(format_mlp_errors(compute_errors(ref, be.calc_efs(pot, ref, types))))
    elif cmd == "calc-grade":
        print(f"MTPR from {pot}, train: {args[1]}, input: {args[2]}")
        images = read_cfg(args[2], types)
        for a, g in zip(images, be.calc_grade(pot, args[1], images, types), strict=True):
            a.info["MV_grade"] = float(g)
        write_cfg(args[3], images, types)
        _side_files(cmd, args, opts, selected=None)
        print('MLIP: Selection: state saved to "state.als"')
    else:  # select-add
        print(f"MTPR from {pot}, traning set: {args[1]}, add from set: {args[2]}")
        limit = _num(opts, "selection-limit")
        res = be.select_add(
            pot,
            args[1],
            args[2],
            types,
            threshold=_value(opts, "select-threshold"),
            limit=int(limit) if limit else None,
        )
        write_cfg(args[3], res.selected, types)
        from autopot.mtp.cfg import format_cfg

        sel = Path(args[1]).read_text() + format_cfg(res.selected, types)
        _side_files(cmd, args, opts, selected=sel)
        print(f"TS increased by {len(res.indices)} configs")
        print('MLIP: Selection: state saved to "state.als"')
        print('MLIP: Selection: training set saved to "selected.cfg"')


def main(argv: list[str]) -> int:
    calls = os.environ.get(CALLS_ENV)
    if calls:
        with open(calls, "a", encoding="utf-8") as fh:
            fh.write(" ".join(argv) + "\n")
    try:
        cmd, args, opts = parse_argv(argv)
        rec = find_recording(cmd, args, opts)
        if rec is not None:
            replay(rec, cmd, args, opts)
        elif os.environ.get(MODE_ENV) == "emulate":
            emulate(cmd, args, opts)
        else:
            raise Refused(
                f"{cmd}: no recording of these inputs/options (stand-in in replay "
                "mode refuses anything it cannot replay)"
            )
    except Refused as exc:
        print(f"ERROR: {exc}")
        return 2
    return 0


def install(bin_dir: Path, *, emulate: bool = False, calls: Path | None = None) -> Path:
    """An executable ``mlp`` in ``bin_dir`` running this file with this Python; ``calls``
    collects every command line it receives."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "mlp"
    mode = "emulate" if emulate else "replay"
    log = f'export {CALLS_ENV}="{calls}"\n' if calls else ""
    path.write_text(
        f"#!/bin/sh\nexport {MODE_ENV}={mode}\n{log}"
        f'exec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
