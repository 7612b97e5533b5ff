"""A corpus of bad inputs a materials scientist plausibly gives autopot, and how to run one
against a finished workflow through the real CLI.

Each case must: exit non-zero (2 unless said otherwise), print exactly one line on stderr
(``autopot: error: ...``) naming the file and/or field (``needles``), print no traceback,
and leave the workflow's database byte-identical. Used by
tests/workflow/test_bad_input_corpus.py and bench/bad_inputs.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CU_CFG = """BEGIN_CFG
 Size
    1
 Supercell
         3.610000      0.000000      0.000000
         0.000000      3.610000      0.000000
         0.000000      0.000000      3.610000
 AtomData:  id type       cartes_x      cartes_y      cartes_z
             1    0       0.000000      0.000000      0.000000
END_CFG
"""
POSCAR = """Cu
1.0
3.61 0 0
0 3.61 0
0 0 3.61
Cu
4
Cartesian
0 0 0
0 1.805 1.805
1.805 0 1.805
1.805 1.805 0
"""
EXTXYZ = """1
Lattice="3.61 0 0 0 3.61 0 0 0 3.61" Properties=species:S:1:pos:R:3 pbc="T T T"
Cu 0 0 0
"""


def make_files(scratch: Path) -> None:
    """The input files the cases name, in ``scratch``."""
    scratch.mkdir(parents=True, exist_ok=True)
    files = {
        "ts.cfg": CU_CFG,
        "empty.cfg": "",
        "blank.cfg": "  \n\n\t\n",
        "POSCAR": POSCAR,
        "cands.xyz": EXTXYZ,
        "bad.mtp": "MTP\nversion = 1.1.0\npotential_name = x\nspecies_count = one\n",
        "INCAR_semicolon": "ENCUT = 400; ISMEAR = 0\n",
        "unknown_key.yaml": "atom_typo: Cu=0\n",
        "malformed.yaml": "grades: [100, 10\n",
        "wrong_type.yaml": "grades: abc\n",
        "flag_type.yaml": "md-select: maybe\n",
        "dict_typo.yaml": "calculate-ts: true\natom-types: Cu=0\ntraining-set: ts.cfg\nmd-args: {temprature_K: 300}\n",
    }
    for name, text in files.items():
        (scratch / name).write_text(text)
    (scratch / "garbage.cfg").write_bytes(bytes(range(256)) * 4)
    (scratch / "INCAR_garbage").write_bytes(b"\x00\xff\xfe" * 50 + bytes(range(200)))
    (scratch / "mlp").write_text("#!/bin/sh\nexit 0\n")  # an mlp binary never run here
    (scratch / "mlp").chmod(0o755)
    (scratch / "adir").mkdir(exist_ok=True)
    (scratch / "existing_folder").mkdir(exist_ok=True)
    shutil.copy(REPO / "motoko.yaml", scratch / "motoko_as_options.yaml")
    # workflow copies with a broken template or motoko.yaml, pointed at the finished
    # workflow's directory with -W: they must be refused before it is touched
    for name, edit in {
        "dup_key": (
            "tasks/train/bd.yaml",
            lambda t: t.replace("job:\n", "job:\n  atom_types: str\n", 1),
        ),
        "no_job": ("tasks/select/bd.yaml", lambda t: t.replace("job:\n", "jobs:\n", 1)),
        "bad_type": (
            "tasks/md_select/bd.yaml",
            lambda t: t.replace(
                "{type: int, default: 1000, min: 1", "{type: integer, default: 1000, min: 1"
            ),
        ),
        "bad_default": (
            "tasks/md_select/bd.yaml",
            lambda t: t.replace("default: 600.0, min: 0", "default: -600.0, min: 0"),
        ),
        "motoko_dup": (
            "motoko.yaml",
            lambda t: t.replace("task_managers:", "directory: x\ntask_managers:"),
        ),
        "executor_typo": (
            "motoko.yaml",
            lambda t: t.replace(
                "executor: {name: local}", "executor: {name: local, max_paralel: 2}"
            ),
        ),
        "executor_db": (
            "motoko.yaml",
            lambda t: t.replace(
                "sp_calc: {template: tasks/sp_calc, retries: 1}",
                "sp_calc: {template: tasks/sp_calc, retries: 1, executor: {name: local, db: tcp}}",
            ),
        ),
    }.items():
        dest = scratch / name
        if dest.exists():
            continue
        dest.mkdir()
        shutil.copy(REPO / "motoko.yaml", dest / "motoko.yaml")
        for part in ("tasks", "workflow"):
            shutil.copytree(REPO / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        target = dest / edit[0]
        target.write_text(edit[1](target.read_text()))


@dataclass
class Case:
    name: str
    args: list[str]  # after "autopot"; {motoko} {wf} {s} are substituted
    needles: tuple[str, ...]  # each must appear in the one error line
    code: int = 2
    unprivileged: tuple[str, ...] = ()  # paths ({wf}/{s} substituted) chmod'ed to 0 for the case
    chmod: int = 0
    extra_setup: Callable[[Path], None] | None = field(default=None, repr=False)


def _start(*flags: str) -> list[str]:
    return ["orchestrator", "start", "-c", "{motoko}", *flags]


def _broken_copy(name: str) -> list[str]:
    """Start a workflow copy with a broken template or motoko.yaml (``scratch/<name>``),
    pointed at the finished workflow's directory."""
    return ["orchestrator", "start", "-c", "{s}/" + name + "/motoko.yaml", "-W", "{wf}"]


_SEL = [
    "--select",
    "-a",
    "Cu=0",
    "--training-set",
    "{s}/ts.cfg",
    "--grades",
    "10",
    "2",
    "--training-candidate-set",
    "{s}/ts.cfg",
]
_TS = ["--calculate-ts", "-a", "Cu=0", "--training-set", "{s}/ts.cfg"]

CASES: list[Case] = [
    # flags
    Case(
        "grades-not-a-number", _start("--grades", "abc"), ("--grades", "invalid float value: 'abc'")
    ),
    Case("grades-one-quoted-word", _start("--grades", "100 10 2"), ("--grades", "'100 10 2'")),
    Case(
        "grades-increasing",
        _start(*_SEL[:-4], "2", "10", *_SEL[-2:]),
        ("--grades", "strictly decreasing"),
    ),
    Case("grades-at-one", _start(*_SEL[:-4], "10", "1", *_SEL[-2:]), ("--grades", "> 1")),
    Case(
        "grades-without-values",
        _start("--select", "--grades"),
        ("--grades", "expected at least one"),
    ),
    Case(
        "unknown-flag",
        _start("--atom-typo", "Cu=0"),
        ("--atom-typo", "unknown flag", "--atom-types"),
    ),
    Case(
        "atom-types-malformed",
        _start("--calculate-ts", "-a", "Cu", "--training-set", "{s}/ts.cfg"),
        ("--atom-types",),
    ),
    Case(
        "atom-types-not-covering",
        _start("--calculate-ts", "-a", "Cu=1", "--training-set", "{s}/ts.cfg"),
        ("ts.cfg", "line", "type 0"),
    ),
    Case("preset-unknown", _start("--preset", "nope"), ("--preset", "invalid choice")),
    Case("level-zero", _start(*_TS, "--level", "0"), ("--level", "positive integer")),
    Case("max-iterations-negative", _start(*_TS, "--max-iterations", "-1"), ("--max-iterations",)),
    Case(
        "md-temperature-negative",
        _start(*_TS, "--md-temperature", "-300"),
        ("--md-temperature", "md_args.temperature_K", "below the minimum"),
    ),
    Case("md-steps-zero", _start(*_TS, "--md-steps", "0"), ("--md-steps", "md_args.steps")),
    Case("md-timestep-zero", _start(*_TS, "--md-timestep", "0"), ("--md-timestep", "timestep_fs")),
    Case(
        "gamma-min-above-max",
        _start(*_TS, "--gamma-min", "5", "--gamma-max", "3"),
        ("--gamma-min",),
    ),
    Case(
        "train-iterations-text", _start(*_TS, "--train-iterations", "many"), ("--train-iterations",)
    ),
    # dict parameters
    Case(
        "md-args-typo",
        _start(*_TS, "--md-args", '{"temprature_K": 300}'),
        ("md_select.md_args.temprature_K", "unknown key", "temperature_K"),
    ),
    Case(
        "md-args-wrong-type",
        _start(*_TS, "--md-args", '{"steps": "many"}'),
        ("md_select.md_args.steps",),
    ),
    Case("md-args-not-json", _start(*_TS, "--md-args", "temperature=300"), ("--md-args", "JSON")),
    Case(
        "train-args-typo",
        _start(*_TS, "--train-args", '{"max_iters": 5}'),
        ("train.train_args.max_iters",),
    ),
    Case(
        "train-args-negative-weight",
        _start(*_TS, "--train-args", '{"energy_weight": -1}'),
        ("train.train_args.energy_weight",),
    ),
    Case(
        "select-args-gamma-below-one",
        _start(*_TS, "--select-args", '{"gamma_min": 0.5}'),
        ("select_args.gamma_min",),
    ),
    Case(
        "mtp-backend-missing-binary",
        _start(*_TS, "--mtp-backend", "{s}/nonexistent/mlp"),
        ("--mtp-backend",),
    ),
    Case(
        "mlp-train-args-lbfgs",
        _start(*_TS, "--mtp-backend", "{s}/mlp", "--train-args", '{"method": "L-BFGS-B"}'),
        ("--train-args", "train_args.method", "BFGS only"),
    ),
    Case(
        "mlp-train-args-conv-window",
        _start(*_TS, "--mtp-backend", "{s}/mlp", "--train-args", '{"conv_window": 20}'),
        ("--train-args", "train_args.conv_window", "fixed at 100"),
    ),
    Case(
        "mtp-backend-unknown-name",
        _start(*_TS, "--mtp-backend", '{"name": "lammps"}'),
        ("train.mtp_backend.name", "lammps"),
    ),
    Case("calculator-unknown", _start(*_TS, "--calculator", "nosuch"), ("calculator",)),
    Case(
        "calculator-key-typo",
        _start(*_TS, "--calculator", '{"calculator": "emt", "kwrgs": {}}'),
        ("calculator.kwrgs",),
    ),
    Case(
        "calculator-bad-json",
        _start(*_TS, "--calculator", '{"calculator": emt'),
        ("--calculator", "JSON"),
    ),
    Case(
        "calculator-not-importable",
        _start(*_TS, "--calculator", "ase.calculators.nope:X"),
        ("calculator.calculator", "cannot import"),
    ),
    # input files
    Case("vasp-without-incar", _start(*_TS, "--calculator", "vasp"), ("--pot-fname",)),
    Case(
        "incar-binary-garbage",
        _start(*_TS, "--calculator", "vasp", "--pot-fname", "{s}/INCAR_garbage"),
        ("INCAR_garbage", "not an INCAR"),
    ),
    Case(
        "incar-several-tags-a-line",
        _start(*_TS, "--calculator", "vasp", "--pot-fname", "{s}/INCAR_semicolon"),
        ("INCAR_semicolon", "line 1", "several tags"),
    ),
    Case(
        "training-set-empty",
        _start("--calculate-ts", "-a", "Cu=0", "--training-set", "{s}/empty.cfg"),
        ("empty.cfg", "--training-set", "empty"),
    ),
    Case(
        "candidates-whitespace-only",
        _start(*_SEL[:-1], "{s}/blank.cfg"),
        ("blank.cfg", "--training-candidate-set", "empty"),
    ),
    Case(
        "md-configurations-empty",
        _start(*_TS, "--md-select", "--md-configurations", "{s}/empty.cfg"),
        ("empty.cfg", "--md-configurations"),
    ),
    Case(
        "poscar-as-training-set",
        _start("--calculate-ts", "-a", "Cu=0", "--training-set", "{s}/POSCAR"),
        ("POSCAR",),
    ),
    Case("extxyz-as-candidates", _start(*_SEL[:-1], "{s}/cands.xyz"), ("cands.xyz",)),
    Case(
        "cfg-binary-garbage",
        _start("--calculate-ts", "-a", "Cu=0", "--training-set", "{s}/garbage.cfg"),
        ("garbage.cfg", "not a text file"),
    ),
    Case("mtp-malformed", _start(*_TS, "--potential", "{s}/bad.mtp"), ("bad.mtp",)),
    Case(
        "training-set-missing",
        _start("--calculate-ts", "-a", "Cu=0", "--training-set", "{s}/nope.cfg"),
        ("nope.cfg", "--training-set", "file not found"),
    ),
    Case(
        "training-set-is-a-directory",
        _start("--calculate-ts", "-a", "Cu=0", "--training-set", "{s}/adir"),
        ("adir", "--training-set", "not a file"),
    ),
    Case(
        "select-without-grades",
        _start(
            "--select",
            "-a",
            "Cu=0",
            "--training-set",
            "{s}/ts.cfg",
            "--training-candidate-set",
            "{s}/ts.cfg",
        ),
        ("--grades",),
    ),
    Case(
        "select-without-candidates",
        _start("--select", "-a", "Cu=0", "--training-set", "{s}/ts.cfg", "--grades", "10"),
        ("--training-candidate-set",),
    ),
    # workflow options file
    Case(
        "options-unknown-key",
        _start("--config", "{s}/unknown_key.yaml"),
        ("unknown_key.yaml", "atom_typo"),
    ),
    Case(
        "options-malformed-yaml",
        _start("--config", "{s}/malformed.yaml"),
        ("malformed.yaml", "line"),
    ),
    Case(
        "options-wrong-type",
        _start("--config", "{s}/wrong_type.yaml"),
        ("wrong_type.yaml", "grades"),
    ),
    Case(
        "options-flag-not-bool",
        _start("--config", "{s}/flag_type.yaml"),
        ("flag_type.yaml", "md-select"),
    ),
    Case(
        "options-dict-typo",
        _start("--config", "{s}/dict_typo.yaml"),
        ("dict_typo.yaml", "md_select.md_args.temprature_K", "unknown key"),
    ),
    Case("options-missing", _start("--config", "{s}/nope.yaml"), ("nope.yaml", "--config")),
    Case(
        "options-is-motoko",
        _start("--config", "{s}/motoko_as_options.yaml"),
        ("motoko.yaml", "-c/--motoko"),
    ),
    # templates and motoko.yaml (a broken copy, pointed at the finished workflow with -W)
    Case(
        "bd-duplicated-key",
        _broken_copy("dup_key"),
        ("bd.yaml", "duplicated key 'atom_types'"),
    ),
    Case(
        "bd-without-job",
        _broken_copy("no_job"),
        ("bd.yaml", "job"),
    ),
    Case(
        "bd-unknown-type",
        _broken_copy("bad_type"),
        ("bd.yaml", "md_args.steps", "unknown type 'integer'"),
    ),
    Case(
        "bd-default-out-of-range",
        _broken_copy("bad_default"),
        ("bd.yaml", "temperature_K", "below the minimum"),
    ),
    Case(
        "motoko-duplicated-key",
        _broken_copy("motoko_dup"),
        ("motoko.yaml", "duplicated key 'directory'"),
    ),
    Case(
        "motoko-executor-option-typo",
        _broken_copy("executor_typo"),
        ("motoko.yaml", "executor.max_paralel", "did you mean 'max_parallel'"),
    ),
    Case(
        "motoko-task-executor-bad-db",
        _broken_copy("executor_db"),
        ("motoko.yaml", "task_managers.sp_calc.executor.db", "socket (default) or none"),
    ),
    Case(
        "motoko-missing",
        ["orchestrator", "start", "-c", "{s}/nowhere/motoko.yaml"],
        ("motoko.yaml", "not found"),
    ),
    # permissions (the CLI runs without root's permission override)
    Case(
        "workflow-dir-unwritable",
        _start(*_TS),
        ("cannot write the workflow directory", "permission denied"),
        unprivileged=("{wf}",),
        chmod=0o555,
    ),
    Case(
        "database-unreadable-runs",
        ["runs", "sp_calc", "-W", "{wf}"],
        ("autopot.fs",),
        unprivileged=("{wf}/db/autopot.fs",),
    ),
    Case(
        "database-unreadable-start",
        _start(*_TS),
        ("autopot.fs", "permission denied"),
        unprivileged=("{wf}/db/autopot.fs",),
    ),
    # the other commands
    Case("runs-unknown-task", ["runs", "sp_calcs", "-W", "{wf}"], ("sp_calcs",)),
    Case(
        "runs-where-typo",
        ["runs", "sp_calc", "-W", "{wf}", "--where", "enrgy > 3"],
        ("where", "enrgy"),
    ),
    Case(
        "runs-where-unparsable",
        ["runs", "sp_calc", "-W", "{wf}", "--where", "energy >"],
        ("where", "energy >"),
    ),
    Case(
        "runs-unknown-column",
        ["runs", "sp_calc", "-W", "{wf}", "--columns", "id,nope"],
        ("--columns", "nope"),
    ),
    Case("show-no-such-run", ["show", "sp_calc.9999", "-W", "{wf}"], ("sp_calc.9999",)),
    Case(
        "archive-into-existing-folder",
        ["archive", "-W", "{wf}", "{s}/existing_folder"],
        ("existing_folder",),
    ),
    Case("export-unknown-format", ["export", "-W", "{wf}", "--format", "pdb"], ("--format", "pdb")),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def substitute(args: list[str], motoko: Path, scratch: Path) -> list[str]:
    wf = motoko.parent / "autopot-workflow"
    return [
        a.replace("{motoko}", str(motoko)).replace("{wf}", str(wf)).replace("{s}", str(scratch))
        for a in args
    ]


@dataclass
class Outcome:
    case: Case
    code: int
    stderr: str
    stdout: str
    db_unchanged: bool

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr + self.stdout

    def problems(self) -> list[str]:
        """Why this outcome fails the corpus's bar (empty: it passes)."""
        out = []
        if self.code != self.case.code:
            out.append(f"exit {self.code}, expected {self.case.code}")
        if len(self.lines) != 1 or not self.lines[0].startswith("autopot: error: "):
            out.append(f"{len(self.lines)} stderr lines, expected one 'autopot: error:' line")
        missing = [n for n in self.case.needles if n not in (self.lines[0] if self.lines else "")]
        if missing:
            out.append(f"error line lacks {missing}")
        if self.traceback:
            out.append("traceback printed")
        if not self.db_unchanged:
            out.append("database changed")
        return out


def run_case(case: Case, motoko: Path, scratch: Path, timeout: float = 120) -> Outcome:
    """Run one case through the real CLI (a separate process) and judge it."""
    db = motoko.parent / "autopot-workflow" / "db" / "autopot.fs"
    before = sha256(db)
    cmd = [sys.executable, "-m", "autopot.cli", *substitute(case.args, motoko, scratch)]
    locked = [Path(p) for p in substitute(list(case.unprivileged), motoko, scratch)]
    modes = {p: p.stat().st_mode & 0o7777 for p in locked}
    if locked and os.geteuid() == 0:  # root ignores file modes: run without that privilege
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    try:
        for p in locked:
            p.chmod(case.chmod)
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=scratch,
            env={**os.environ, "COLUMNS": "80"},
        )
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    return Outcome(case, proc.returncode, proc.stderr, proc.stdout, sha256(db) == before)
