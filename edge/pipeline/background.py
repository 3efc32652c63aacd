"""Class-free static foreground from a dual background model.

A long-term and a short-term background are kept as running averages of a small grey
frame. Where the frame differs from the long-term background but no longer from the
short-term one, something arrived a while ago and stayed: a static object (Porikli's dual
foreground). Long-term learning is masked where there is foreground, so a left object is not
absorbed; a "ghost" (long-term background remembers an object that has gone) is recognised by
its edges being in the background rather than in the frame, and is absorbed at once.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from contract.config.camera import BackgroundConfig
from edge.rules.base import iou_matrix


class StaticForeground:
    def __init__(self, cfg: BackgroundConfig) -> None:
        self.cfg = cfg
        self._long: npt.NDArray[np.float32] | None = None
        self._short: npt.NDArray[np.float32] | None = None
        self._last_ts: float | None = None
        self._static_age_s: npt.NDArray[np.float32] | None = None
        self._scale = 1.0
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    def _grey(self, frame_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        h, w = frame_bgr.shape[:2]
        self._scale = self.cfg.work_width_px / w
        small = cv2.resize(
            frame_bgr,
            (self.cfg.work_width_px, max(1, round(h * self._scale))),
            interpolation=cv2.INTER_AREA,
        )
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(grey, (5, 5), 0).astype(np.float32)

    def update(
        self,
        frame_bgr: npt.NDArray[np.uint8],
        ts_s: float,
        min_area_px: float,
        explained_xyxy: npt.NDArray[np.float32] | None = None,
    ) -> npt.NDArray[np.float32]:
        """Static blobs (xyxy, frame pixels) at least ``min_area_px`` large and not covered by
        an ``explained`` box (a person or vehicle standing there)."""
        g = self._grey(frame_bgr)
        if self._long is None or self._short is None or self._last_ts is None:
            self._long, self._short, self._last_ts = g.copy(), g.copy(), ts_s
            self._static_age_s = np.zeros_like(g)
            return np.empty((0, 4), np.float32)
        assert self._static_age_s is not None
        dt = max(1e-3, ts_s - self._last_ts)
        self._last_ts = ts_s
        thr = self.cfg.diff_threshold
        fg_long = (cv2.absdiff(g, self._long) > thr).astype(np.uint8)
        fg_short = (cv2.absdiff(g, self._short) > thr).astype(np.uint8)
        static = cv2.morphologyEx(fg_long & (1 - fg_short), cv2.MORPH_OPEN, self._kernel)
        static = cv2.morphologyEx(static, cv2.MORPH_CLOSE, self._kernel)
        # How long each pixel has been static: a blob is judged only once it has settled,
        # not while the short-term background is still taking the new object in.
        self._static_age_s = (self._static_age_s + dt) * static

        a_short = 1 - math.exp(-dt / self.cfg.short_s)
        a_long = 1 - math.exp(-dt / self.cfg.long_s)
        cv2.accumulateWeighted(g, self._short, a_short)
        learn = (1 - cv2.dilate(fg_long, self._kernel)).astype(np.uint8)
        cv2.accumulateWeighted(g, self._long, a_long, mask=learn)

        n, labels, stats, _ = cv2.connectedComponentsWithStats(static, connectivity=8)
        area_scale = self._scale * self._scale
        boxes: list[list[float]] = []
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area / area_scale < min_area_px:
                continue
            # Work inside the blob's box (plus a margin for its outline), not the whole frame.
            pad = 4
            ys = slice(max(0, y - pad), y + h + pad)
            xs = slice(max(0, x - pad), x + w + pad)
            blob = (labels[ys, xs] == i).astype(np.uint8)
            if float(np.median(self._static_age_s[ys, xs][blob.astype(bool)])) < self.cfg.short_s:
                continue
            if self._is_ghost(g[ys, xs], self._long[ys, xs], blob):
                np.copyto(self._long[ys, xs], g[ys, xs], where=blob.astype(bool))
                continue
            boxes.append(
                [x / self._scale, y / self._scale, (x + w) / self._scale, (y + h) / self._scale]
            )
        blobs = np.asarray(boxes, np.float32).reshape(-1, 4)
        if explained_xyxy is not None and len(explained_xyxy) and len(blobs):
            covered = iou_matrix(blobs, explained_xyxy.astype(np.float32)).max(axis=1) > 0.1
            blobs = blobs[~covered]
        return blobs

    def _is_ghost(
        self,
        frame: npt.NDArray[np.float32],
        background: npt.NDArray[np.float32],
        blob: npt.NDArray[np.uint8],
    ) -> bool:
        """A real object has its outline in the frame; a ghost has it in the background."""
        band = (cv2.dilate(blob, self._kernel) - cv2.erode(blob, self._kernel)).astype(bool)

        def outline(img: npt.NDArray[np.float32]) -> float:
            gx = cv2.Sobel(img, cv2.CV_32F, 1, 0)
            gy = cv2.Sobel(img, cv2.CV_32F, 0, 1)
            return float(np.hypot(gx, gy)[band].mean())

        return outline(background) > 1.2 * outline(frame)
