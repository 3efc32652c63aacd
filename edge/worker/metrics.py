"""The worker's Prometheus metrics, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_DETECT_BUCKETS_S = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


class EdgeMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        cam = ["camera"]
        self.frames_decoded = Counter(
            "streetwatch_edge_frames_decoded", "Frames decoded from the source.", cam, registry=r
        )
        self.frames_due = Counter(
            "streetwatch_edge_frames_due",
            "Frames sampled at the camera's detect rate for the detect stage.",
            cam,
            registry=r,
        )
        self.frames_processed = Counter(
            "streetwatch_edge_frames_processed",
            "Due frames through tracking and rules.",
            cam,
            registry=r,
        )
        self.frames_dropped = Counter(
            "streetwatch_edge_frames_dropped",
            "Due frames replaced by a newer one before the stage took them (it fell behind).",
            [*cam, "stage"],
            registry=r,
        )
        self.frames_skipped = Counter(
            "streetwatch_edge_frames_skipped",
            "Processed frames the motion gate kept from the detector.",
            cam,
            registry=r,
        )
        self.detector_calls = Counter(
            "streetwatch_edge_detector_calls", "Frames the detector ran on.", cam, registry=r
        )
        self.detector_seconds = Histogram(
            "streetwatch_edge_detector_seconds",
            "Duration of one detector run (one batch of frames).",
            ["model", "batch"],
            buckets=_DETECT_BUCKETS_S,
            registry=r,
        )
        self.fps = Gauge(
            "streetwatch_edge_camera_fps",
            "Frames processed per second, over the last 10 s.",
            cam,
            registry=r,
        )
        self.lag_s = Gauge(
            "streetwatch_edge_detect_lag_seconds",
            "Decode-to-result delay of the camera's last processed frame.",
            cam,
            registry=r,
        )
        self.camera_up = Gauge(
            "streetwatch_edge_camera_up", "1 while the camera delivers frames.", cam, registry=r
        )
        self.reconnects = Counter(
            "streetwatch_edge_camera_reconnects", "Times the source was reopened.", cam, registry=r
        )
        self.events = Counter(
            "streetwatch_edge_events",
            "Event messages put in the outbox.",
            [*cam, "type", "phase"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "streetwatch_edge_outbox_depth", "Event messages not yet acknowledged.", registry=r
        )
        self.outbox_media_depth = Gauge(
            "streetwatch_edge_outbox_media_depth", "Evidence files not yet uploaded.", registry=r
        )
        self.outbox_refused = Gauge(
            "streetwatch_edge_outbox_refused",
            "Messages refused because the outbox was full.",
            registry=r,
        )
