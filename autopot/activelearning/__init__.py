"""The AutoPot active-learning workflow (stages, settings, demo presets)."""

from autopot.activelearning.settings import Settings
from autopot.activelearning.stages import run_stages

__all__ = ["Settings", "run_stages"]
