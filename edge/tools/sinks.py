"""Where replay results go: events and per-frame tracks as JSON lines, an annotated video.

Each is a ``ResultSink``: its camera chain opens it once built (so a config error leaves no
empty file behind), writes every frame's result and closes it, also after an error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

import cv2

from contract.errors import StreetwatchError
from edge.camera.chain import CameraChain, FrameResult, ResultSink
from edge.evidence.annotate import Annotator
from edge.pipeline.zones import Zone
from edge.rules.events import Event


def _open_text(path: Path, what: str) -> IO[str]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        raise StreetwatchError(f"{path}: cannot write {what} file: {exc.strerror}") from None


class EventsJsonl(ResultSink):
    """One JSON line per lifecycle message (start, update, end)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: IO[str] | None = None

    def open(self, chain: CameraChain) -> None:
        self._f = _open_text(self.path, "events")

    def _write(self, events: list[Event]) -> None:
        if self._f is None:
            raise RuntimeError(f"{self.path}: events sink written before it was opened")
        for ev in events:
            self._f.write(json.dumps(ev.to_dict(), separators=(",", ":")) + "\n")
        self._f.flush()

    def write(self, result: FrameResult) -> None:
        if result.events:
            self._write(result.events)

    def end(self, closing: list[Event]) -> None:
        self._write(closing)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


class TracksJsonl(ResultSink):
    """One JSON line per frame.

    ``{"frame", "ts_s", "tracks": [{track_id, label, score, xyxy, zones}]}``
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: IO[str] | None = None
        self.class_names: tuple[str, ...] = ()
        self.zones: list[Zone] = []

    def open(self, chain: CameraChain) -> None:
        self.class_names, self.zones = chain.class_names, chain.zones
        self._f = _open_text(self.path, "tracks")

    def write(self, result: FrameResult) -> None:
        if self._f is None:
            raise RuntimeError(f"{self.path}: tracks sink written before it was opened")
        tracks = result.tracks
        records = tracks.to_records(self.class_names)
        anchors = tracks.anchor_bottom_center
        inside = [z.contains(anchors, result.frame.wh) for z in self.zones]
        for i, rec in enumerate(records):
            rec["zones"] = [z.name for z, m in zip(self.zones, inside, strict=True) if m[i]]
        line = {"frame": result.frame.index, "ts_s": round(result.frame.ts_s, 3), "tracks": records}
        self._f.write(json.dumps(line, separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


class AnnotatedVideo(ResultSink):
    """An MP4 of every frame with the zones, boxes and track ids drawn."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self._annotator: Annotator | None = None
        self.zones: list[Zone] = []

    def open(self, chain: CameraChain) -> None:
        self._annotator, self.zones = Annotator(chain.class_names), chain.zones
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, result: FrameResult) -> None:
        if self._annotator is None:
            raise RuntimeError(f"{self.path}: video sink written before it was opened")
        image_bgr = self._annotator.draw(result.frame.image_bgr, result.tracks, self.zones)
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
