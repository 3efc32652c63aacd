"""Zones: named polygons that answer one question, which anchor points lie inside."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from contract.config.camera import ZoneConfig


class Zone:
    def __init__(self, cfg: ZoneConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self._mask: npt.NDArray[np.bool_] | None = None
        self._mask_wh: tuple[int, int] | None = None

    def polygon_px(self, frame_wh: tuple[int, int]) -> npt.NDArray[np.int32]:
        pts = np.asarray(self.cfg.polygon, dtype=np.float64)
        if self.cfg.units == "normalized":
            pts = pts * np.asarray(frame_wh, dtype=np.float64)
        return np.round(pts).astype(np.int32)

    def contains(
        self, points_xy: npt.NDArray[np.float32], frame_wh: tuple[int, int]
    ) -> npt.NDArray[np.bool_]:
        """Membership of each point; the polygon is rasterised once per frame size."""
        if self._mask is None or self._mask_wh != frame_wh:
            mask = np.zeros((frame_wh[1], frame_wh[0]), dtype=np.uint8)
            cv2.fillPoly(mask, [self.polygon_px(frame_wh)], 1)
            self._mask, self._mask_wh = mask.astype(bool), frame_wh
        if len(points_xy) == 0:
            return np.zeros(0, dtype=bool)
        xy = np.floor(points_xy).astype(np.int64)
        x = np.clip(xy[:, 0], 0, frame_wh[0] - 1)
        y = np.clip(xy[:, 1], 0, frame_wh[1] - 1)
        return self._mask[y, x]
