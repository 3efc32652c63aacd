"""Run a recorded video through a camera's chain, the same code path a live camera takes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from contract.config.camera import CameraConfig
from contract.errors import StreetwatchError
from edge.camera.chain import CameraChain, EventSink, EvidenceTarget, FrameResult, ResultSink
from edge.camera.detectors import build_detector
from edge.config.edge_box import load_edge_config
from edge.delivery.sender import Delivery
from edge.detectors import Detector
from edge.detectors.catalog import load_manifest
from edge.evidence.media import MediaItem
from edge.rules.events import Event
from edge.sources import open_source
from edge.sources.base import FrameSource
from edge.sources.packets import PacketRing
from edge.sources.pyav import PyAvSource
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

    def add(self, result: FrameResult) -> None:
        self.frames += 1
        self.detector_calls += result.detected
        self.media_s = result.frame.ts_s
        self.detect_ms_total += result.detect_ms
        self.track_ids.update(int(t) for t in result.tracks.tracker_id)
        self.rules_ms_total += result.rules_ms
        self.events += result.events

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


def replay(source: FrameSource, chain: CameraChain, *, show_progress: bool = True) -> ReplaySummary:
    """Run every frame through the chain; at the end, close open incidents."""
    summary = ReplaySummary()
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
        with chain:  # an error closes the chain's sinks
            for frame in source.frames():
                result = chain.process(frame)
                summary.add(result)
                bar.update(1)
                bar.set_postfix(
                    tracks=len(result.tracks),
                    events=len(summary.events),
                    det_ms=f"{result.detect_ms:.0f}",
                    refresh=False,
                )
            summary.events += chain.finish()
    finally:
        summary.wall_s = time.perf_counter() - start
        bar.close()
    return summary


@dataclass(frozen=True)
class ReplayOutputs:
    """What a replay writes besides its summary."""

    annotated_out: Path | None = None
    tracks_out: Path | None = None
    events_out: Path | None = None
    #: Evidence clips and snapshots of each event (unless an edge config takes them).
    clips_dir: Path | None = None

    def sinks(self, fps: float) -> list[ResultSink]:
        out: list[ResultSink] = []
        if self.events_out:
            out.append(EventsJsonl(self.events_out))
        if self.tracks_out:
            out.append(TracksJsonl(self.tracks_out))
        if self.annotated_out:
            out.append(AnnotatedVideo(self.annotated_out, fps))
        return out


def _discard(item: MediaItem) -> None:
    """Evidence recorded only to a folder: nobody is waiting for it."""


def replay_file(
    video: str,
    cfg: CameraConfig,
    *,
    realtime: bool = False,
    outputs: ReplayOutputs = ReplayOutputs(),
    edge_config: Path | None = None,
    drain_timeout_s: float = 120.0,
    show_progress: bool = True,
) -> ReplaySummary:
    """Replay a video with a camera config. ``realtime``: at the video's own frame rate.

    ``edge_config``: put events and evidence in that box's outbox and deliver them to the
    aggregator, as a camera would; at the end wait up to ``drain_timeout_s`` for it.
    """
    detector = build_detector(cfg, load_manifest())
    if edge_config is None:
        evidence = EvidenceTarget(outputs.clips_dir, _discard) if outputs.clips_dir else None
        return _replay_video(video, cfg, detector, realtime, outputs, evidence, (), show_progress)
    delivery = Delivery(load_edge_config(edge_config))
    delivery.start()
    try:
        summary = _replay_video(
            video,
            cfg,
            detector,
            realtime,
            outputs,
            EvidenceTarget(delivery.media_dir, delivery.media_ready),
            [EventSink(delivery.send)],
            show_progress,
        )
        if not delivery.drain(drain_timeout_s):
            raise StreetwatchError(
                f"not everything was delivered within {drain_timeout_s:.0f} s; it stays in "
                f"{delivery.cfg.outbox.path} and is sent by `edge publish`"
            )
    finally:
        delivery.stop()
    return summary


def _replay_video(
    video: str,
    cfg: CameraConfig,
    detector: Detector,
    realtime: bool,
    outputs: ReplayOutputs,
    evidence: EvidenceTarget | None,
    sinks: Sequence[ResultSink],
    show_progress: bool,
) -> ReplaySummary:
    # The file's packets make the clips (remuxed, as a camera's would), unless it is an image.
    ring = PacketRing(max(cfg.clips.buffer_s, cfg.clips.pre_roll_s + 2.0)) if evidence else None
    with open_source(video, realtime=realtime, packets=ring) as source:
        if evidence is not None and isinstance(source, PyAvSource):
            evidence = replace(evidence, packets=ring)
        chain = CameraChain(
            cfg,
            detector,
            fps=source.fps,
            evidence=evidence,
            sinks=[*sinks, *outputs.sinks(source.fps)],
        )
        return replay(source, chain, show_progress=show_progress)
