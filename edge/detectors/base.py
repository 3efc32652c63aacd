"""The one interface every detector backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt

from edge.detectors.detections import Detections


class Detector(ABC):
    """Turns a BGR frame into boxes in that frame's pixel coordinates."""

    #: Class names in model index order.
    class_names: tuple[str, ...]
    #: Human-readable name of the loaded model, for logs and benchmarks.
    model_name: str

    @abstractmethod
    def detect(self, frame_bgr: npt.NDArray[np.uint8]) -> Detections:
        """Detect objects; boxes are class-aware NMS'd and clipped to the frame."""

    def detect_batch(self, frames_bgr: list[npt.NDArray[np.uint8]]) -> list[Detections]:
        """Detect in several frames (of several cameras); backends that batch override this."""
        return [self.detect(f) for f in frames_bgr]
