"""autopot: automatic active learning of machine-learning interatomic potentials.

Kept import-light on purpose: task processes import ``autopot`` at start-up, so heavy
modules (ZODB, ase, motep, mlippykit) are imported only by the submodules that need them.
"""

__version__ = "0.1.0"
