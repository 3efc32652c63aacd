"""The snapshot of a verification: the frame looked at, with the case's zone, the objects that
count and a caption with the verdict. People are blurred as the camera's privacy settings
say, before anything is written; the file goes out like any evidence (its event id is the
request id)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt
import supervision as sv

from contract.config.camera import PrivacyConfig
from contract.verify import VerifyAnswer
from edge.detectors.detections import Detections
from edge.evidence.media import MediaItem
from edge.evidence.privacy import blur_boxes
from edge.evidence.ringbuffer import scale_to_width
from edge.pipeline.zones import Zone
from edge.sources.base import Frame

#: Widest snapshot kept, as for incident snapshots.
MAX_WIDTH_PX = 1280
JPEG_QUALITY = 90
_ZONE_BGR = sv.Color.from_hex("#ffcc00")
_COUNTED_BGR = (0, 0, 255)


@dataclass(frozen=True)
class Sight:
    """One frame a verification looked at: the picture, every track (for privacy blurring)
    and the objects that count (the rule's classes in the zone), with their value."""

    frame: Frame
    tracks: Detections
    counted: Detections
    value: float


def caption(answer: VerifyAnswer, zone: str) -> str:
    """'verify | cam-1/kerb | still_present: 9 of 10 frames' for the picture's top bar."""
    seen = f"{answer.present_frames} of {answer.frames} frames"
    return f"verify | {answer.camera}/{zone} | {answer.verdict}: {seen}"


def draw(
    sight: Sight,
    zone: Zone,
    answer: VerifyAnswer,
    class_names: tuple[str, ...],
    privacy: PrivacyConfig,
) -> npt.NDArray[np.uint8]:
    image = sight.frame.image_bgr
    if privacy.blur_people and len(sight.tracks):
        private = [i for i, n in enumerate(class_names) if n in set(privacy.classes)]
        people = sight.tracks[np.isin(sight.tracks.class_id, np.asarray(private, np.int64))]
        image = blur_boxes(image, people.xyxy, privacy.upper_fraction)
    else:
        image = image.copy()
    wh = (image.shape[1], image.shape[0])
    out = sv.draw_polygon(image, cast(Any, zone.polygon_px(wh)), color=_ZONE_BGR, thickness=2)
    for (x1, y1, x2, y2), cid in zip(sight.counted.xyxy, sight.counted.class_id, strict=True):
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), _COUNTED_BGR, 2)
        cv2.putText(
            out,
            class_names[int(cid)],
            (int(x1), max(12, int(y1) - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            _COUNTED_BGR,
            1,
        )
    cv2.rectangle(out, (0, 0), (wh[0], 24), (0, 0, 0), -1)
    text = caption(answer, zone.name)
    cv2.putText(out, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1)
    return out


def write_snapshot(
    sight: Sight,
    zone: Zone,
    answer: VerifyAnswer,
    class_names: tuple[str, ...],
    privacy: PrivacyConfig,
    folder: Path,
) -> MediaItem:
    """Draw and write the snapshot as JPEG in ``folder``: the item for the outbox (its media
    id is new, its event id the request's). OSError when the disk refuses it."""
    shot = draw(sight, zone, answer, class_names, privacy)
    shot = scale_to_width(shot, min(shot.shape[1], MAX_WIDTH_PX))
    folder.mkdir(parents=True, exist_ok=True)
    media_id = str(uuid.uuid4())
    path = folder / f"{media_id}.jpg"
    if not cv2.imwrite(str(path), shot, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"{path}: the snapshot could not be written")
    return MediaItem.of_file(media_id, answer.request_id, "snapshot", path, sight.frame.ts_s, 0.0)
