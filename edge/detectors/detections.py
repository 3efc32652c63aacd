"""The typed set of boxes that flows between detector, tracker and rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Detections:
    """N boxes in frame pixels. ``tracker_id`` is -1 until a tracker confirms the object.

    Shapes are checked on construction so a mistake shows where it was made, not three
    stages later.
    """

    xyxy: FloatArray
    score: FloatArray
    class_id: IntArray
    tracker_id: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __post_init__(self) -> None:
        n = self.xyxy.shape[0] if self.xyxy.ndim == 2 else -1
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"Detections.xyxy must have shape (N, 4), got {self.xyxy.shape}")
        if self.score.shape != (n,):
            raise ValueError(f"Detections.score must have shape ({n},), got {self.score.shape}")
        if self.class_id.shape != (n,):
            raise ValueError(
                f"Detections.class_id must have shape ({n},), got {self.class_id.shape}"
            )
        if self.tracker_id.size == 0 and n > 0:
            object.__setattr__(self, "tracker_id", np.full(n, -1, dtype=np.int64))
        elif self.tracker_id.shape != (n,):
            raise ValueError(
                f"Detections.tracker_id must have shape ({n},), got {self.tracker_id.shape}"
            )

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.empty((0, 4), dtype=np.float32),
            score=np.empty(0, dtype=np.float32),
            class_id=np.empty(0, dtype=np.int64),
        )

    @classmethod
    def from_arrays(
        cls,
        xyxy: npt.ArrayLike,
        score: npt.ArrayLike,
        class_id: npt.ArrayLike,
        tracker_id: npt.ArrayLike | None = None,
    ) -> Detections:
        xyxy_arr = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        n = xyxy_arr.shape[0]
        tid = (
            np.full(n, -1, dtype=np.int64)
            if tracker_id is None
            else np.asarray(tracker_id, dtype=np.int64).reshape(-1)
        )
        return cls(
            xyxy=xyxy_arr,
            score=np.asarray(score, dtype=np.float32).reshape(-1),
            class_id=np.asarray(class_id, dtype=np.int64).reshape(-1),
            tracker_id=tid,
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: npt.NDArray[Any] | slice) -> Detections:
        """Select by boolean mask, integer index array or slice."""
        return Detections(
            xyxy=self.xyxy[index].reshape(-1, 4),
            score=self.score[index].reshape(-1),
            class_id=self.class_id[index].reshape(-1),
            tracker_id=self.tracker_id[index].reshape(-1),
        )

    @property
    def area_px(self) -> FloatArray:
        wh = np.clip(self.xyxy[:, 2:4] - self.xyxy[:, 0:2], 0, None)
        area: FloatArray = (wh[:, 0] * wh[:, 1]).astype(np.float32)
        return area

    @property
    def anchor_bottom_center(self) -> FloatArray:
        """Where an object stands on the ground: the usual anchor for zone membership."""
        x = (self.xyxy[:, 0] + self.xyxy[:, 2]) / 2
        return np.stack([x, self.xyxy[:, 3]], axis=1).astype(np.float32)

    def to_records(self, class_names: tuple[str, ...]) -> list[dict[str, Any]]:
        """Plain JSON-ready dicts, one per box."""
        out: list[dict[str, Any]] = []
        for i in range(len(self)):
            cid = int(self.class_id[i])
            rec: dict[str, Any] = {
                "label": class_names[cid] if 0 <= cid < len(class_names) else str(cid),
                "class_id": cid,
                "score": round(float(self.score[i]), 4),
                "xyxy": [round(float(v), 1) for v in self.xyxy[i]],
            }
            if self.tracker_id[i] >= 0:
                rec["track_id"] = int(self.tracker_id[i])
            out.append(rec)
        return out
