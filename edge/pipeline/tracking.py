"""Multi-object tracking: Roboflow's ByteTrack (``trackers``), driven by frame timestamps.

We adapt rather than write a tracker: ``trackers`` is maintained, torch-free and accepts
per-frame timestamps, so tracks survive skipped or irregular frames with the same
``lost_track_s`` in seconds.
"""

from __future__ import annotations

import warnings

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from contract.config.camera import TrackingConfig
from edge.detectors.detections import Detections

# ByteTrack counts its lost-track buffer in frames of a 30 fps video.
_BUFFER_FPS = 30.0
# min_consecutive_frames holds at this frame rate and above; below it the hits needed shrink
# in proportion (2 hits are 0.2 s at 10 fps but 1 s at 2 fps, where someone walking in has
# moved further than their own width between frames and ByteTrack cannot match them: a
# crowd of six was counted as five for 2.5 s).
_CONFIRM_FPS = 10.0


def confirm_frames(min_consecutive_frames: int, fps: float) -> int:
    """Hits a track needs before it gets an id at ``fps``."""
    scale = min(1.0, fps / _CONFIRM_FPS) if fps > 0 else 1.0
    return max(1, round(min_consecutive_frames * scale))


class Tracker:
    """Assigns stable ids; returns only confirmed tracks (those with an id)."""

    def __init__(self, cfg: TrackingConfig, fps: float) -> None:
        self.cfg = cfg
        self._fps = fps
        self._bt = self._new()

    def _new(self) -> ByteTrackTracker:
        return ByteTrackTracker(
            lost_track_buffer=max(1, round(self.cfg.lost_track_s * _BUFFER_FPS)),
            frame_rate=self._fps,
            track_activation_threshold=self.cfg.activation_score,
            minimum_consecutive_frames=confirm_frames(self.cfg.min_consecutive_frames, self._fps),
            minimum_iou_threshold=self.cfg.match_iou,
            high_conf_det_threshold=self.cfg.high_score,
        )

    def reset(self) -> None:
        self._bt = self._new()

    @property
    def live_track_count(self) -> int:
        """Tracks the tracker holds state for, confirmed or not (to check retirement)."""
        return len(self._bt.tracks)

    def update(self, detections: Detections, ts_s: float) -> Detections:
        sv_det = sv.Detections(
            xyxy=detections.xyxy.astype(np.float32),
            confidence=detections.score.astype(np.float32),
            class_id=detections.class_id.astype(int),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self._bt.update(sv_det, timestamp=ts_s)
        if len(out) == 0:
            return Detections.empty()
        tid = np.asarray(out.tracker_id, dtype=np.int64)
        keep = tid >= 0
        return Detections.from_arrays(
            xyxy=np.asarray(out.xyxy)[keep],
            score=np.asarray(out.confidence)[keep],
            class_id=np.asarray(out.class_id)[keep],
            tracker_id=tid[keep],
        )
