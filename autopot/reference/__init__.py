"""Reference calculators (EMT, EAM, VASP, any ASE calculator) for sp_calc."""

from autopot.reference.calculators import compute_single_point, make_calculator, read_vasp_result

__all__ = ["compute_single_point", "make_calculator", "read_vasp_result"]
