"""Streetwatch edge worker: camera -> detector -> tracker -> rules -> events."""

__version__ = "0.1.0"
