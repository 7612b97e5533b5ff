"""A publish bundle: the final potential with its data, validation and a model card.

The layout a model/dataset hub expects (Hugging Face style: a ``README.md`` with YAML
front matter as the model card, files beside it), built offline; nothing is uploaded::

    DIR/README.md              model card (front matter: license, tags, metrics)
    DIR/model_card.json        the same metadata as data
    DIR/model/pot.mtp          the final potential (+ atom_types.txt)
    DIR/data/                  the training set: configurations.extxyz, colabfit.json, README.md
    DIR/validation/            validation.json (Table 2, held-out errors), validation.md
    DIR/report/                the report (report.html, figures, summary.json)
    DIR/MANIFEST.json          sha256 and size of every other file

:func:`read_bundle` reads one back and checks every sha256.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from autopot.errors import AutopotError, DamagedDataError

CARD = "model_card.json"
MANIFEST = "MANIFEST.json"


def write_bundle(
    out_dir: str | Path,
    workflow: str | Path | None = None,
    *,
    run_name: str | None = None,
    name: str = "",
    license: str = "CC-BY-4.0",
    authors: tuple[str, ...] = (),
) -> Path:
    """Write the bundle of a workflow run's final potential into ``out_dir`` (new or empty)."""
    from autopot.results import dataset as ds
    from autopot.results import export as ex
    from autopot.results.report import build_report
    from autopot.store.workflow_records import WorkflowRecords
    from autopot.tasklib import POTENTIAL
    from autopot.validation import figures
    from autopot.validation.table import text_lines

    out = Path(out_dir).resolve()
    if out.exists() and any(out.iterdir()):
        raise AutopotError("bundle directory is not empty", file=out, field="bundle")
    with WorkflowRecords.open(workflow, run_name) as records:
        train = records.last_train()
        atom_types = records.atom_types(train)
        (out / "model").mkdir(parents=True)
        shutil.copyfile(records.run_dir(train) / POTENTIAL, out / "model" / "pot.mtp")
        (out / "model" / "atom_types.txt").write_text(atom_types + "\n")
        images = ds.training_set(records, train, atom_types=atom_types)
        title = name or f"autopot-{records.run_name}"
        ex.write_colabfit(
            out / "data",
            images,
            records,
            source=f"training set of {train.label}",
            dataset=ex.DatasetInfo(title, f"training set of {title}", list(authors), []),
        )
        validation = figures.load(records)
        (out / "validation").mkdir()
        if validation is not None:
            (out / "validation" / "validation.json").write_text(json.dumps(validation, indent=1))
            (out / "validation" / "validation.md").write_text(
                f"# Validation of {validation['potential']}\n\n```\n"
                + "\n".join(text_lines(validation["rows"]))
                + f"\n```\n\n{validation['text']}\n"
            )
        build_report(records, out / "report", html=True, parity=True)
        summary = records.summary
        q = dict(train.quantities)
        card = {
            "name": title,
            "model_type": "Moment Tensor Potential",
            "library": "autopot (motep / MLIP-2 .mtp format)",
            "license": license,
            "authors": list(authors),
            "species": atom_types,
            "potential": "model/pot.mtp",
            "train_run": train.label,
            "workflow_run": records.run_name,
            "reference_calculator": (summary.get("settings") or {}).get("calculator"),
            "training_set": {"path": "data/configurations.extxyz", "configurations": len(images)},
            "training_errors": {
                k: q.get(k) for k in ("energy_rmse_per_atom", "forces_rmse", "stress_rmse")
            },
            "converged": summary.get("converged"),
            "validation": None
            if validation is None
            else {
                "properties": validation["properties"],
                "within_tolerance": validation["within_tolerance"],
                "missed": validation.get("missed", []),
                "heldout": {
                    k: (validation.get("heldout") or {}).get(k)
                    for k in ("energy_rmse_per_atom", "forces_rmse", "stress_rmse", "n_frames")
                },
                "path": "validation/validation.json",
            },
        }
    (out / CARD).write_text(json.dumps(card, indent=1, default=str) + "\n")
    (out / "README.md").write_text(_readme(card))
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = {
        str(p.relative_to(out)): {"sha256": _sha256(p), "size": p.stat().st_size} for p in files
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def read_bundle(directory: str | Path) -> dict[str, Any]:
    """The model card of a bundle, after checking every file against the manifest."""
    root = Path(directory)
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        card: dict[str, Any] = json.loads((root / CARD).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DamagedDataError(f"not a bundle: {exc}", file=root) from None
    for rel, entry in manifest.items():
        path = root / rel
        if not path.is_file() or _sha256(path) != entry["sha256"]:
            raise DamagedDataError("missing or changed since the bundle was written", file=path)
    extra = {
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != MANIFEST
    } - set(manifest)
    if extra:
        raise DamagedDataError("not in the manifest", file=root / sorted(extra)[0])
    return card


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _readme(card: dict[str, Any]) -> str:
    v = card.get("validation") or {}
    e = card.get("training_errors") or {}
    front = [
        "---",
        f"license: {card['license'].lower()}",
        "library_name: autopot",
        "tags: [interatomic-potential, moment-tensor-potential, active-learning]",
        f"species: {json.dumps(card['species'])}",
        "---",
        "",
        f"# {card['name']}",
        "",
        f"A Moment Tensor Potential for {card['species']} trained by active learning "
        f"(autopot, workflow run {card['workflow_run']}, {card['train_run']}); reference "
        f"calculator {json.dumps(card['reference_calculator'])}.",
        "",
        f"* potential: `{card['potential']}`",
        f"* training set: `{card['training_set']['path']}` "
        f"({card['training_set']['configurations']} configurations, ColabFit layout)",
    ]
    if e.get("energy_rmse_per_atom") is not None:
        front.append(
            f"* training RMSE: {e['energy_rmse_per_atom'] * 1000:.2f} meV/atom, "
            f"{(e.get('forces_rmse') or 0) * 1000:.1f} meV/A"
        )
    if v:
        front.append(
            f"* validation: {v['within_tolerance']} of {v['properties']} properties within "
            f"tolerance (`{v['path']}`)"
            + (f"; missed: {', '.join(v['missed'])}" if v.get("missed") else "")
        )
    front += ["* report: `report/report.html`", ""]
    return "\n".join(front)
