"""The camera config: one YAML file per camera, validated strictly (unknown keys are errors)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contract.config.detector import DetectorConfig, OnnxDetectorConfig
from contract.config.rules import RuleConfig, expand_preset
from contract.config.strict import Strict
from contract.config.tamper import TamperConfig
from contract.config.yaml_source import Loc, YamlDocument

Probability = Annotated[float, Field(gt=0.0, le=1.0)]
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class ReconnectConfig(Strict):
    """How a live source retries after it drops: exponential backoff between attempts."""

    initial_delay_s: float = Field(1.0, gt=0)
    max_delay_s: float = Field(30.0, gt=0)
    max_attempts: int | None = Field(
        None, ge=1, description="Give up after this many failed attempts; null retries forever."
    )
    read_timeout_s: float = Field(10.0, gt=0, description="A stream silent this long is lost.")


StreamRole = Literal["detect", "record"]


class StreamInput(Strict):
    """Another stream of the same camera, e.g. its full-resolution main stream for evidence
    while ``uri`` names a low-resolution substream for detection (Frigate's ``roles``)."""

    uri: str = Field(description="rtsp:// or http(s):// URL (or file) of the stream.")
    roles: list[StreamRole] = Field(["record"], min_length=1)


class SourceConfig(Strict):
    uri: str = Field(description="File path, rtsp:// or http(s):// URL, or a device index.")
    kind: Literal["auto", "file", "image", "stream", "device"] = "auto"
    roles: list[StreamRole] = Field(
        ["detect", "record"],
        min_length=1,
        description="What ``uri`` is for: detect (decoded for the detector) and/or record "
        "(its packets make the clips).",
    )
    inputs: list[StreamInput] = Field(
        default_factory=list, description="Further streams of the camera, with their roles."
    )
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    loop: bool = Field(
        False, description="Files only: start again at the end (demos and soak tests)."
    )
    start_s: float = Field(
        0.0,
        ge=0,
        description="Files only: begin this far into the file, at the keyframe before (copies "
        "of one clip on several cameras of a soak test then are not in step).",
    )

    @model_validator(mode="after")
    def _one_stream_per_role(self) -> SourceConfig:
        if "detect" not in self.roles:
            raise ValueError("roles: the source's uri must have the detect role")
        for role in ("detect", "record"):
            holders = [i for i, s in enumerate(self.inputs) if role in s.roles]
            if len(holders) + (role in self.roles) > 1:
                raise ValueError(
                    f"inputs[{holders[-1]}].roles: the {role} role is already taken; "
                    "one stream per role"
                )
        return self

    @property
    def record_uri(self) -> str | None:
        """The stream whose packets make the clips: ``uri`` itself, another input, or none."""
        if "record" in self.roles:
            return self.uri
        return next((s.uri for s in self.inputs if "record" in s.roles), None)


class DetectionConfig(Strict):
    classes: list[str] | None = Field(
        None, description="Class names of interest; null keeps every class the model knows."
    )
    score_threshold: Probability = 0.3
    class_score_thresholds: dict[str, Probability] = Field(default_factory=dict)
    min_box_area_px: float = Field(0.0, ge=0)
    nms_iou: Probability = 0.45


class TrackingConfig(Strict):
    """ByteTrack settings; times in seconds so they hold at any frame rate."""

    lost_track_s: float = Field(2.0, ge=0, description="Keep a lost track this long.")
    min_consecutive_frames: int = Field(2, ge=1, description="Hits before a track gets an id.")
    match_iou: Probability = 0.1
    high_score: Probability = 0.5
    activation_score: Probability = 0.4


class BackgroundConfig(Strict):
    """Dual background model for class-free static foreground (left_object evidence)."""

    work_width_px: int = Field(320, ge=64, description="Frames are shrunk to this width first.")
    long_s: float = Field(300.0, gt=0, description="Time constant of the long-term background.")
    short_s: float = Field(2.0, gt=0, description="Time constant of the short-term background.")
    diff_threshold: int = Field(
        28, ge=1, le=255, description="Grey-level change that is foreground."
    )
    ghost_hold_s: float = Field(
        3.0,
        gt=0,
        description="A static blob is absorbed as a ghost (an object that left) only after "
        "its ghost verdicts outweigh its real ones by this many seconds.",
    )
    recover_s: float = Field(
        300.0,
        ge=0,
        description="An absorbed blob is given back within this long if the object is "
        "evidently still there.",
    )
    global_change_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Share of the frame changing at once that no lighting gain explains "
        "(an infrared switch): the model re-learns instead of reporting it.",
    )


class MotionConfig(Strict):
    """Motion gating: run the detector only when the picture changed since its last run.

    Skipped frames carry the last detections forward (the scene is still, so they still
    hold); stationary objects are re-checked every ``refresh_s`` and whenever motion
    appears anywhere in the frame.
    """

    enabled: bool = Field(True, description="Skip the detector on frames without motion.")
    work_width_px: int = Field(160, ge=32, le=1280, description="Frames are shrunk to this width.")
    diff_threshold: int = Field(
        25, ge=1, le=255, description="Grey-level change at work size that counts as motion."
    )
    min_area_fraction: float = Field(
        0.001, gt=0, le=1, description="Changed share of the frame that counts as motion."
    )
    refresh_s: float = Field(2.0, gt=0, description="Run the detector at least this often.")
    moving_fraction: float = Field(
        0.1,
        gt=0,
        description="A track whose centre moved this share of its box diagonal is moving; "
        "while one is, the detector runs on every frame.",
    )
    moving_hold_s: float = Field(1.0, ge=0, description="A track that moved counts this long.")


def _orient(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _self_intersection(pts: list[tuple[float, float]]) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges that properly cross, or None. O(n^2): zones are
    drawn by hand and have tens of points, not thousands."""
    n = len(pts)
    for i in range(n):
        a, b = pts[i], pts[(i + 1) % n]
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue  # the closing edge shares the first point
            c, d = pts[j], pts[(j + 1) % n]
            d1, d2 = _orient(a, b, c), _orient(a, b, d)
            d3, d4 = _orient(c, d, a), _orient(c, d, b)
            if d1 * d2 < 0 and d3 * d4 < 0:
                return i, j
    return None


class ZoneConfig(Strict):
    name: str
    units: Literal["normalized", "pixels"] = Field(
        description="'normalized': 0..1 of frame width/height; 'pixels': frame pixels."
    )
    polygon: list[tuple[float, float]]
    rules: list[RuleConfig] = Field(default_factory=list)

    @field_validator("rules", mode="before")
    @classmethod
    def _presets(cls, v: Any) -> Any:
        return [expand_preset(r) for r in v] if isinstance(v, list) else v

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"zone name '{v}' must be lowercase letters, digits, '-' or '_'")
        return v

    @field_validator("polygon")
    @classmethod
    def _polygon_ok(
        cls, pts: list[tuple[float, float]], info: ValidationInfo
    ) -> list[tuple[float, float]]:
        # A field validator, so errors name zones[i].polygon (units is validated before it).
        if len(pts) < 3:
            raise ValueError(f"polygon needs at least 3 points, got {len(pts)}")
        if info.data.get("units") == "normalized":
            bad = [p for p in pts if not (0 <= p[0] <= 1 and 0 <= p[1] <= 1)]
            if bad:
                raise ValueError(
                    f"normalized polygon point {list(bad[0])} is outside 0..1 "
                    "(use units: pixels for pixel coordinates)"
                )
        area2 = 0.0
        for i in range(len(pts)):
            x1, y1 = pts[i]
            x2, y2 = pts[(i + 1) % len(pts)]
            area2 += x1 * y2 - x2 * y1
        if abs(area2) < 1e-9:
            raise ValueError("polygon has zero area (points are collinear or repeated)")
        crossing = _self_intersection(pts)
        if crossing is not None:
            i, j = crossing
            raise ValueError(
                f"polygon crosses itself: edge {i}-{i + 1} crosses edge {j}-{(j + 1) % len(pts)} "
                "(list the points in order around the zone)"
            )
        return pts

    @model_validator(mode="after")
    def _rule_names(self) -> ZoneConfig:
        names = [r.name for r in self.rules]
        for n in names:
            if names.count(n) > 1:
                raise ValueError(f"rule name '{n}' is used twice in zone '{self.name}'; set name:")
        return self


class ClipConfig(Strict):
    """Evidence clips: frames kept in a ring buffer so a clip starts before its event."""

    enabled: bool = True
    pre_roll_s: float = Field(5.0, ge=0, description="Clip starts this long before the event.")
    post_roll_s: float = Field(3.0, ge=0, description="Clip goes on this long after the end.")
    max_s: float = Field(60.0, gt=0, description="Longest clip; a long incident is cut here.")
    buffer_s: float = Field(10.0, gt=0, description="Ring buffer length; at least pre_roll_s.")
    fps: float = Field(10.0, gt=0, le=30, description="Frames per second kept and encoded.")
    width_px: int = Field(640, ge=64, le=3840, description="Frames are scaled to this width.")
    jpeg_quality: int = Field(80, ge=10, le=100, description="Quality of buffered frames.")
    crf: int = Field(28, ge=0, le=51, description="H.264 quality (lower is better, larger).")
    queue_frames: int = Field(600, ge=10, description="Encoder queue; full means frames dropped.")

    @model_validator(mode="after")
    def _buffer(self) -> ClipConfig:
        if self.buffer_s < self.pre_roll_s:
            raise ValueError("buffer_s must be at least pre_roll_s")
        return self


class PrivacyConfig(Strict):
    """Blur people in stored clips and snapshots before anything is written."""

    blur_people: bool = False
    classes: list[str] = Field(default_factory=lambda: ["person"])
    upper_fraction: float = Field(
        0.5, gt=0, le=1, description="Blur this top share of each box (head and upper body)."
    )


class CameraConfig(Strict):
    id: str = Field(description="Stable camera id, used in events.")
    name: str | None = None
    source: SourceConfig | None = None
    detector: DetectorConfig = Field(default_factory=OnnxDetectorConfig)
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    background: BackgroundConfig = Field(default_factory=BackgroundConfig)
    tamper: TamperConfig = Field(default_factory=TamperConfig)
    clips: ClipConfig = Field(default_factory=ClipConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)
    zones: list[ZoneConfig] = Field(default_factory=list)

    _doc: YamlDocument | None = PrivateAttr(default=None)

    @field_validator("id")
    @classmethod
    def _id_slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"camera id '{v}' must be lowercase letters, digits, '-' or '_'")
        return v

    @model_validator(mode="after")
    def _unique_zones(self) -> CameraConfig:
        seen: set[str] = set()
        for z in self.zones:
            if z.name in seen:
                raise ValueError(f"zone name '{z.name}' is used twice")
            seen.add(z.name)
        return self

    @property
    def base_dir(self) -> Path:
        """Relative paths in the file are relative to the file's folder."""
        return self._doc.path.parent if self._doc else Path.cwd()

    def where(self, loc: Loc) -> str:
        """'file:line' of a field, for error messages."""
        return self._doc.where(loc) if self._doc else "command line"
