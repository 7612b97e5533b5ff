"""Simulations on any ASE calculator: OPT, EOS, MD, PHONON, NEB, NEB_FROM_ENDPOINTS,
ELASTICITY, SFE, VACANCY.

Each module's ``run(atoms, calculator, **params)`` is the pure computation, returning a
JSON-serialisable dict. The upper-case names are the recorded API (MLIP Arena's style):
the same computation as a task run in a workflow's store, cached by task source + inputs.
"""
