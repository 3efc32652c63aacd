"""Run the whole pipeline over a recorded video, the same code path a camera uses."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from edge.camera.chain import Pipeline
from edge.delivery.sender import Delivery
from edge.evidence.annotate import Annotator
from edge.evidence.clips import ClipRecorder
from edge.rules.events import Event
from edge.sources.base import FrameSource
from edge.tools.sinks import AnnotatedVideo, EventsJsonl, TracksJsonl


@dataclass
class ReplaySummary:
    frames: int = 0
    #: Frames the detector ran on; the rest were skipped by motion gating.
    detector_calls: int = 0
    media_s: float = 0.0
    wall_s: float = 0.0
    detect_ms_total: float = 0.0
    track_ids: set[int] = field(default_factory=set)
    rules_ms_total: float = 0.0
    events: list[Event] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def rules_ms_mean(self) -> float:
        return self.rules_ms_total / self.frames if self.frames else 0.0

    @property
    def detect_ms_mean(self) -> float:
        """Mean time of one detector call."""
        return self.detect_ms_total / self.detector_calls if self.detector_calls else 0.0

    @property
    def skipped_fraction(self) -> float:
        return 1 - self.detector_calls / self.frames if self.frames else 0.0


def replay(
    source: FrameSource,
    pipeline: Pipeline,
    *,
    annotated_out: Path | None = None,
    tracks_out: Path | None = None,
    events_out: Path | None = None,
    show_progress: bool = True,
    recorder: ClipRecorder | None = None,
    delivery: Delivery | None = None,
) -> ReplaySummary:
    """Run every frame through the pipeline; at the end, close open incidents."""
    summary = ReplaySummary()
    events_sink = EventsJsonl(events_out) if events_out else None
    tracks_sink = (
        TracksJsonl(tracks_out, pipeline.class_names, pipeline.zones) if tracks_out else None
    )
    video_sink = AnnotatedVideo(annotated_out, source.fps) if annotated_out else None
    annotator = Annotator(pipeline.class_names) if video_sink else None
    bar = tqdm(
        total=source.frame_count,
        unit="frame",
        desc="replay",
        disable=not show_progress,
        dynamic_ncols=True,
        mininterval=0.5,
    )
    start = time.perf_counter()
    try:
        for frame in source.frames():
            result = pipeline.process(frame)
            events = result.events
            if recorder is not None:
                events = recorder.observe(frame, result.tracks, events, pipeline.zones)
            if delivery is not None:
                delivery.send(events)
            summary.frames += 1
            summary.detector_calls += result.detected
            summary.media_s = frame.ts_s
            summary.detect_ms_total += result.detect_ms
            summary.track_ids.update(int(t) for t in result.tracks.tracker_id)
            summary.rules_ms_total += result.rules_ms
            summary.events += events
            if events_sink and events:
                events_sink.write(events)
            if tracks_sink:
                tracks_sink.write(result)
            if video_sink and annotator:
                video_sink.write(annotator.draw(frame.image_bgr, result.tracks, pipeline.zones))
            bar.update(1)
            bar.set_postfix(
                tracks=len(result.tracks),
                events=len(summary.events),
                det_ms=f"{result.detect_ms:.0f}",
                refresh=False,
            )
        closing = pipeline.finish()
        if recorder is not None:
            closing = [recorder.attach(e) for e in closing]
            recorder.close()
        if delivery is not None:
            delivery.send(closing)
        summary.events += closing
        if events_sink:
            events_sink.write(closing)
    finally:
        summary.wall_s = time.perf_counter() - start
        bar.close()
        if tracks_sink:
            tracks_sink.close()
        if video_sink:
            video_sink.close()
        if events_sink:
            events_sink.close()
    return summary
