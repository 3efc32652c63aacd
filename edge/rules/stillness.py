"""Which tracks are standing still, and since when, robust to box jitter."""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

# History shorter than this share of the window cannot prove stillness yet.
_MIN_SPAN_FRAC = 0.9


class Stillness:
    """Per track: centres over the last ``window_s``. A track is still when every centre in
    the window lies within ``max_move_frac`` of its box size of the window's median centre.
    """

    def __init__(self, window_s: float, max_move_frac: float) -> None:
        self.window_s = window_s
        self.max_move_frac = max_move_frac
        self._hist: dict[int, deque[tuple[float, float, float]]] = {}
        self._still_since: dict[int, float] = {}
        self._last_seen: dict[int, float] = {}

    def update(
        self, track_ids: npt.NDArray[np.int64], xyxy: npt.NDArray[np.float32], ts_s: float
    ) -> list[float | None]:
        """For each given track, the time it became still, or None while it moves."""
        out: list[float | None] = []
        for tid, box in zip(track_ids.tolist(), xyxy, strict=True):
            cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
            size = float(np.sqrt(max(1.0, (box[2] - box[0]) * (box[3] - box[1]))))
            h = self._hist.setdefault(tid, deque())
            h.append((ts_s, cx, cy))
            while h and h[0][0] < ts_s - self.window_s:
                h.popleft()
            self._last_seen[tid] = ts_s
            pts = np.asarray([(x, y) for _, x, y in h])
            centre = np.median(pts, axis=0)
            moving = bool(np.any(np.hypot(*(pts - centre).T) > self.max_move_frac * size))
            span = ts_s - h[0][0]
            if moving:
                self._still_since.pop(tid, None)
                out.append(None)
            elif tid in self._still_since:
                out.append(self._still_since[tid])
            elif span >= _MIN_SPAN_FRAC * self.window_s:
                self._still_since[tid] = h[0][0]
                out.append(h[0][0])
            else:
                out.append(None)
        self._forget(ts_s)
        return out

    def _forget(self, ts_s: float) -> None:
        # Tracks unseen for a whole window are gone; drop their state.
        stale = [t for t, seen in self._last_seen.items() if ts_s - seen > self.window_s]
        for t in stale:
            self._hist.pop(t, None)
            self._still_since.pop(t, None)
            self._last_seen.pop(t, None)

    def __len__(self) -> int:
        return len(self._hist)
