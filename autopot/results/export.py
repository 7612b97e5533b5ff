"""Writing training data out: extended XYZ, MLIP-2 .cfg, or a ColabFit-ready directory.

extxyz keeps energy, forces and stress as ASE results (``ase.io.read`` gives them back)
and the provenance in each configuration's info line. The ColabFit layout is the
configurations plus a ``colabfit.json`` describing the properties the way ColabFit's
tools ingest them (property map with units and per-property metadata: method, software,
settings), so a dataset can be published without hand-written glue.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autopot.errors import AutopotError
from autopot.results.dataset import describe_calculator
from autopot.results.source import WorkflowRecords

if TYPE_CHECKING:
    from ase import Atoms

FORMATS = ("extxyz", "cfg", "colabfit")
COLABFIT_CONFIGS = "configurations.extxyz"
COLABFIT_META = "colabfit.json"


@dataclass
class DatasetInfo:
    """Free-text facts of a published dataset (ColabFit asks for them)."""

    name: str = ""
    description: str = ""
    authors: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


def extxyz_text(images: Sequence[Atoms]) -> str:
    from ase.io import write

    buf = io.StringIO()
    if images:
        write(buf, list(images), format="extxyz")
    return buf.getvalue()


def cfg_text(images: Sequence[Atoms], atom_types: str) -> str:
    from autopot.mtp.cfg import format_cfg

    return format_cfg(images, atom_types)


def write_text(path: Path, text: str) -> None:
    """All or nothing: an interrupted export never leaves half a file."""
    from autopot.atomic import atomic_write_text

    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise AutopotError(f"cannot write: {exc.strerror}", file=path) from None


def write_colabfit(
    out_dir: Path,
    images: Sequence[Atoms],
    records: WorkflowRecords,
    *,
    source: str,
    dataset: DatasetInfo,
) -> Path:
    """``out_dir/configurations.extxyz`` + ``out_dir/colabfit.json`` (+ a short README)."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise AutopotError("output directory is not empty", file=out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for atoms in images:
        atoms.info.setdefault(
            "name", f"{records.run_name}/{atoms.info.get('autopot_sp_calc', 'config')}"
        )
    write_text(out_dir / COLABFIT_CONFIGS, extxyz_text(images))
    meta = colabfit_metadata(images, records, source=source, dataset=dataset)
    write_text(
        out_dir / COLABFIT_META, json.dumps(meta, indent=1, sort_keys=False, default=str) + "\n"
    )
    write_text(out_dir / "README.md", _colabfit_readme(meta))
    return out_dir


def colabfit_metadata(
    images: Sequence[Atoms], records: WorkflowRecords, *, source: str, dataset: DatasetInfo
) -> dict[str, Any]:
    """The dataset description and property map ColabFit's tools read next to the extxyz."""
    from autopot.store.records import package_versions

    calculators = _calculators(images, records)
    if len(calculators) == 1:
        (calc,) = calculators.values()
    else:  # several reference methods in one set: say so, list each
        calc = {
            "software": "mixed",
            "method": "mixed",
            "settings": {"calculators": list(calculators.values())},
        }
    meta_block = {
        "software": {"value": calc["software"]},
        "method": {"value": calc["method"]},
        "input": {"value": calc["settings"]},
    }
    elements = sorted({s for a in images for s in a.get_chemical_symbols()})
    has_stress = any("stress" in (a.calc.results if a.calc is not None else {}) for a in images)
    property_map: dict[str, Any] = {
        "energy": [
            {
                "energy": {"field": "energy", "units": "eV"},
                "per-atom": {"value": False, "units": None},
                "_metadata": meta_block,
            }
        ],
        "atomic-forces": [
            {"forces": {"field": "forces", "units": "eV/angstrom"}, "_metadata": meta_block}
        ],
    }
    if has_stress:  # ASE's stress: Cauchy stress in eV/A^3, already divided by the volume
        property_map["cauchy-stress"] = [
            {
                "stress": {"field": "stress", "units": "eV/angstrom^3"},
                "volume-normalized": {"value": False, "units": None},
                "_metadata": meta_block,
            }
        ]
    versions = package_versions()
    return {
        "name": dataset.name or f"autopot_{records.run_name}",
        "description": dataset.description
        or (
            f"Training set built by autopot active learning (workflow run {records.run_name!r}, {source}): "
            f"configurations selected by D-optimality from candidate sets and MD with a Moment Tensor "
            f"Potential, labelled with {calc['method']} ({calc['software']})."
        ),
        "authors": dataset.authors,
        "links": dataset.links,
        "configuration_file": COLABFIT_CONFIGS,
        "file_format": "extxyz",
        "n_configurations": len(images),
        "n_atoms": int(sum(len(a) for a in images)),
        "elements": elements,
        "property_map": property_map,
        "configuration_metadata_fields": sorted(
            {k for a in images for k in a.info if k.startswith("autopot_")}
            | ({"MV_grade"} & {k for a in images for k in a.info})
        ),
        "provenance": {
            "generator": "autopot",
            "autopot_version": versions.get("autopot", ""),
            "versions": versions,
            "workflow_run": records.run_name,
            "source": source,
            "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    }


def _calculators(images: Sequence[Atoms], records: WorkflowRecords) -> dict[str, dict[str, Any]]:
    """Distinct reference calculators of the exported configurations (by description)."""
    out: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for atoms in images:
        label = atoms.info.get("autopot_sp_calc")
        if not label:
            continue
        run = records.run(label)
        # the same spec and input file (by its recorded sha256) describe alike: read each once
        pot = run.job.params.get("pot_fname")
        key = json.dumps(
            [run.params.get("calculator"), run.manifest.get(Path(str(pot)).name) if pot else None],
            sort_keys=True,
            default=str,
        )
        if key in seen:
            continue
        seen.add(key)
        desc = describe_calculator(
            run, records.directory / run.directory if run.directory else None
        )
        out.setdefault(json.dumps(desc, sort_keys=True, default=str), desc)
    if not out:
        out["unknown"] = {"software": "unknown", "method": "unknown", "settings": {}}
    return out


def _colabfit_readme(meta: dict[str, Any]) -> str:
    props = ", ".join(meta["property_map"])
    return (
        f"# {meta['name']}\n\n{meta['description']}\n\n"
        f"* `{meta['configuration_file']}`: {meta['n_configurations']} configurations "
        f"({meta['n_atoms']} atoms; elements {', '.join(meta['elements'])}), extended XYZ.\n"
        f"* `{COLABFIT_META}`: properties ({props}) with units and metadata (method, software, settings), "
        "in the property-map form ColabFit's tools read; per-configuration provenance fields.\n"
        f"\nExported by autopot {meta['provenance']['autopot_version']} on {meta['provenance']['exported']}.\n"
    )
