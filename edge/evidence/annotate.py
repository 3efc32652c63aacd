"""Draw what the pipeline saw: zones, boxes, labels with track ids."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import numpy.typing as npt
import supervision as sv

from edge.detectors.detections import Detections
from edge.pipeline.zones import Zone
from edge.rules.events import Event


class Annotator:
    def __init__(self, class_names: tuple[str, ...]) -> None:
        self.class_names = class_names
        self._boxes = sv.BoxAnnotator(thickness=2, color_lookup=sv.ColorLookup.TRACK)
        self._labels = sv.LabelAnnotator(
            text_scale=0.45,
            text_padding=3,
            color_lookup=sv.ColorLookup.TRACK,
            smart_position=True,  # keeps labels of boxes touching the frame edge visible
        )
        self._zone_color = sv.Color.from_hex("#ffcc00")

    def draw(
        self, image_bgr: npt.NDArray[np.uint8], tracks: Detections, zones: list[Zone]
    ) -> npt.NDArray[np.uint8]:
        out = image_bgr.copy()
        wh = (out.shape[1], out.shape[0])
        for zone in zones:
            poly = zone.polygon_px(wh)
            out = sv.draw_polygon(out, cast(Any, poly), color=self._zone_color, thickness=2)
            x, y = poly.min(axis=0)
            out = sv.draw_text(
                out,
                zone.name,
                sv.Point(int(x) + 40, int(y) + 12),
                text_color=self._zone_color,
                text_scale=0.5,
            )
        if len(tracks) == 0:
            return out
        tid = tracks.tracker_id
        sv_det = sv.Detections(
            xyxy=tracks.xyxy,
            confidence=tracks.score,
            class_id=tracks.class_id.astype(int),
            tracker_id=np.where(tid >= 0, tid, 0).astype(int),
        )
        labels = [
            (f"#{t} " if t >= 0 else "") + f"{self.class_names[c]} {s:.2f}"
            for t, c, s in zip(tid, tracks.class_id, tracks.score, strict=True)
        ]
        out = self._boxes.annotate(out, sv_det)
        return self._labels.annotate(out, sv_det, labels=labels)


def draw_event(
    image_bgr: npt.NDArray[np.uint8], event: Event, zones: list[Zone]
) -> npt.NDArray[np.uint8]:
    """The snapshot of an incident: its zone, its boxes and a caption."""
    import cv2

    out = image_bgr.copy()
    wh = (out.shape[1], out.shape[0])
    for zone in zones:
        out = sv.draw_polygon(
            out, cast(Any, zone.polygon_px(wh)), color=sv.Color.from_hex("#ffcc00"), thickness=2
        )
    for (x1, y1, x2, y2), label in zip(
        event.boxes, event.labels or ("",) * len(event.boxes), strict=False
    ):
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), (0, 0, 255), 2)
        if label:
            cv2.putText(
                out,
                label,
                (int(x1), max(12, int(y1) - 4)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.5,
                (0, 0, 255),
                1,
            )
    caption = f"{event.type} | {event.camera}/{event.zone} | {event.value:.1f} {event.unit}"
    cv2.rectangle(out, (0, 0), (wh[0], 24), (0, 0, 0), -1)
    cv2.putText(out, caption, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1)
    return out
