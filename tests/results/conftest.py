"""Helpers of the archive/export/report tests: the engine tests' CLI runner and toy
workflow (one definition, imported from there).

The finished demo they read (``finished_demo``) is the session fixture of tests/conftest.py.
"""

from engine.conftest import TOY, autopot, start_background, toy

__all__ = ["TOY", "autopot", "start_background", "toy"]
