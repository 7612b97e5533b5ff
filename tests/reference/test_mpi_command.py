"""VASP's MPI launch line for sp_calc on SLURM: ``calculator: {calculator: vasp, mpi: ...}``."""

from __future__ import annotations

from pathlib import Path

import pytest

from autopot.errors import AutopotError
from autopot.reference.calculators import make_calculator, mpi_command
from autopot.reference.spec import check_spec


def test_launch_line_from_the_job_and_the_spec() -> None:
    assert mpi_command(None) is None  # ASE's own ASE_VASP_COMMAND
    assert mpi_command({}, {"SLURM_NTASKS": "8"}) == "srun -n 8 vasp_std"
    assert (
        mpi_command({"launcher": "mpirun", "ntasks": 4, "executable": "/opt/vasp/bin/vasp_gam"}, {})
        == "mpirun -n 4 /opt/vasp/bin/vasp_gam"
    )
    assert mpi_command({}, {"VASP_EXECUTABLE": "vasp_ncl"}) == "srun -n 1 vasp_ncl"


@pytest.mark.parametrize(
    ("mpi", "field"),
    [
        ({"launcher": "sh"}, "calculator.mpi.launcher"),
        ({"ntasks": 0}, "calculator.mpi.ntasks"),
        ({"ntasks": True}, "calculator.mpi.ntasks"),
        ({"executable": "vasp_std; rm -rf ~"}, "calculator.mpi.executable"),
        ({"nodes": 2}, "calculator.mpi.nodes"),
        ("srun", "calculator.mpi"),
    ],
)
def test_bad_launch_settings_are_one_line_naming_the_key(mpi: object, field: str) -> None:
    with pytest.raises(AutopotError) as err:
        check_spec({"calculator": "vasp", "mpi": mpi})
    assert err.value.field == field and "\n" not in str(err.value)


def test_the_vasp_calculator_gets_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    incar = tmp_path / "INCAR"
    incar.write_text("ENCUT = 400\nISMEAR = 1\n")
    monkeypatch.setenv("SLURM_NTASKS", "16")
    calc = make_calculator(
        {"calculator": "vasp", "incar": str(incar), "mpi": {"launcher": "srun"}},
        directory=tmp_path / "calc",
    )
    assert calc.command == "srun -n 16 vasp_std"
