"""A still image as a one-frame source."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edge.errors import SourceError
from edge.sources.base import Frame, FrameSource, SourceState

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class ImageSource(FrameSource):
    def __init__(self, path: Path) -> None:
        self.uri = str(path)
        if not path.is_file():
            raise SourceError(f"{path}: image file not found")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"{path}: cannot decode as an image (not an image, or corrupt)")
        self._image = np.asarray(image, dtype=np.uint8)

    @property
    def fps(self) -> float:
        return 1.0

    def frames(self) -> Iterator[Frame]:
        self.state = SourceState.STREAMING
        yield Frame(image_bgr=self._image, ts_s=0.0, index=0)
        self.state = SourceState.ENDED
