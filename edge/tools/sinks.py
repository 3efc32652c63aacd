"""Where replay results go: per-frame tracks as JSON lines, and an annotated video."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

import cv2
import numpy as np
import numpy.typing as npt

from contract.errors import StreetwatchError
from edge.camera.chain import FrameResult
from edge.pipeline.zones import Zone
from edge.rules.events import Event


class TracksJsonl:
    """One JSON line per frame.

    ``{"frame", "ts_s", "tracks": [{track_id, label, score, xyxy, zones}]}``
    """

    def __init__(self, path: Path, class_names: tuple[str, ...], zones: list[Zone]) -> None:
        self.class_names = class_names
        self.zones = zones
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f: IO[str] = path.open("w", encoding="utf-8")
        except OSError as exc:
            raise StreetwatchError(f"{path}: cannot write tracks file: {exc.strerror}") from None

    def write(self, result: FrameResult) -> None:
        tracks = result.tracks
        records = tracks.to_records(self.class_names)
        anchors = tracks.anchor_bottom_center
        inside = [z.contains(anchors, result.frame.wh) for z in self.zones]
        for i, rec in enumerate(records):
            rec["zones"] = [z.name for z, m in zip(self.zones, inside, strict=True) if m[i]]
        line = {"frame": result.frame.index, "ts_s": round(result.frame.ts_s, 3), "tracks": records}
        self._f.write(json.dumps(line, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._f.close()


class AnnotatedVideo:
    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, image_bgr: npt.NDArray[np.uint8]) -> None:
        if self._writer is None:
            h, w = image_bgr.shape[:2]
            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise StreetwatchError(f"{self.path}: cannot open for writing video")
        self._writer.write(image_bgr)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


class EventsJsonl:
    """One JSON line per lifecycle message (start, update, end)."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f: IO[str] = path.open("w", encoding="utf-8")
        except OSError as exc:
            raise StreetwatchError(f"{path}: cannot write events file: {exc.strerror}") from None

    def write(self, events: list[Event]) -> None:
        for ev in events:
            self._f.write(json.dumps(ev.to_dict(), separators=(",", ":")) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()
