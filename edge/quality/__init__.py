"""Video-quality diagnosis: camera tamper (covered, turned, defocused, frozen, noisy, glare)."""

from edge.quality.measures import Measures
from edge.quality.tamper import TamperMonitor, TamperVerdict, classify

__all__ = ["Measures", "TamperMonitor", "TamperVerdict", "classify"]
