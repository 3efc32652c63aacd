"""The multi-camera edge worker behind `edge run`."""

from edge.worker.runner import Worker

__all__ = ["Worker"]
