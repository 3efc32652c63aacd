"""Evidence: a browser-playable H.264 MP4 clip and an annotated JPEG snapshot per incident.

When the camera's reader keeps its compressed packets (the record role) and nothing has to
be burned into the picture, clips are cut from them by remuxing (edge/evidence/remux.py):
no decoding, no encoding, the camera's own resolution and frame rate. Otherwise (privacy
blur, or a source without packets such as a local device) frames are kept as JPEG in a ring
buffer and encoded.

PyAV (FFmpeg's libraries, with libx264 inside its wheels) encodes: maintained, on PyPI for
every platform, no system FFmpeg needed. Encoding runs in its own thread behind a bounded
queue, so detection never waits for it: when the queue is full, clip frames are dropped and
counted instead.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from contract.config.camera import ClipConfig, PrivacyConfig
from edge.detectors.detections import Detections
from edge.evidence.media import MediaItem
from edge.evidence.privacy import blur_boxes
from edge.evidence.remux import ClipCutter, RemuxJob, RemuxWriter
from edge.evidence.ringbuffer import BufferedFrame, FrameRing, scale_to_width
from edge.pipeline.zones import Zone
from edge.rules.events import Event
from edge.sources.base import Frame
from edge.sources.packets import PacketRing

log = logging.getLogger(__name__)


@dataclass
class _Job:
    clip_id: str
    event_id: str
    start_ts: float
    end_ts: float | None = None  # known once the event ends (plus post-roll)
    last_ts: float = 0.0
    frames: int = 0
    path: Path = field(default_factory=Path)


class ClipEncoder(threading.Thread):
    """Owns the encoders; takes ("frame", clip, ts, jpeg) and ("close", clip) from a queue."""

    def __init__(self, cfg: ClipConfig, on_ready: Callable[[MediaItem], None]) -> None:
        super().__init__(name="clip-encoder", daemon=True)
        self.cfg = cfg
        self.on_ready = on_ready
        self.queue: queue.Queue[tuple[str, _Job, float, bytes] | None] = queue.Queue(
            cfg.queue_frames
        )
        self._open: dict[str, tuple[av.container.OutputContainer, av.VideoStream, float]] = {}
        self._last_ts: dict[str, float] = {}  # of the last frame encoded, per open clip
        self.encode_s = 0.0
        self.encoded_frames = 0
        #: Once set and passed (time.monotonic()), queued frames are skipped and the clips are
        #: closed with what they have: a stopping box does not wait on a backlog of encoding.
        self.deadline_mono_s: float | None = None
        self.skipped_frames = 0

    def run(self) -> None:
        import time

        while True:
            item = self.queue.get()
            if item is None:
                break
            what, job, ts, jpeg = item
            if what == "frame" and self._past_deadline():
                self.skipped_frames += 1
                continue
            t0 = time.perf_counter()
            try:
                if what == "frame":
                    self._frame(job, ts, jpeg)
                else:
                    self._close(job)
            except Exception:
                log.exception("clip %s: encoding failed", job.clip_id)
                self._open.pop(job.clip_id, None)
            self.encode_s += time.perf_counter() - t0

    def _past_deadline(self) -> bool:
        import time

        return self.deadline_mono_s is not None and time.monotonic() > self.deadline_mono_s

    def _frame(self, job: _Job, ts: float, jpeg: bytes) -> None:
        decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            raise RuntimeError("buffered frame is not a JPEG")
        image = np.asarray(decoded, dtype=np.uint8)
        if job.clip_id not in self._open:
            container = av.open(str(job.path), "w", options={"movflags": "+faststart"})
            stream = container.add_stream("libx264", rate=Fraction(1000))
            stream.width, stream.height = image.shape[1], image.shape[0]
            stream.pix_fmt = "yuv420p"
            stream.time_base = Fraction(1, 1000)
            stream.options = {"crf": str(self.cfg.crf), "preset": "veryfast"}
            stream.codec_context.options = {"threads": "1"}
            self._open[job.clip_id] = (container, stream, ts)
        container, stream, t0 = self._open[job.clip_id]
        vf = av.VideoFrame.from_ndarray(image, format="bgr24")
        vf.pts = round((ts - t0) * 1000)  # real timestamps: thinned or dropped frames stay in time
        vf.time_base = Fraction(1, 1000)
        for packet in stream.encode(vf):
            container.mux(packet)
        self._last_ts[job.clip_id] = ts
        self.encoded_frames += 1

    def _close(self, job: _Job) -> None:
        opened = self._open.pop(job.clip_id, None)
        if opened is None:
            return
        container, stream, t0 = opened
        last_ts = self._last_ts.pop(job.clip_id, t0)
        for packet in stream.encode():
            container.mux(packet)
        container.close()
        duration_s = last_ts - t0 + 1 / self.cfg.fps
        self.on_ready(
            MediaItem.of_file(job.clip_id, job.event_id, "clip", job.path, t0, duration_s)
        )


class ClipRecorder:
    """One camera's evidence: ring buffer, clip jobs per incident, snapshots."""

    def __init__(
        self,
        cfg: ClipConfig,
        privacy: PrivacyConfig,
        class_names: tuple[str, ...],
        media_dir: Path,
        on_ready: Callable[[MediaItem], None],
        packets: PacketRing | None = None,
    ) -> None:
        self.cfg = cfg
        self.privacy = privacy
        self.media_dir = media_dir
        media_dir.mkdir(parents=True, exist_ok=True)
        self.on_ready = on_ready
        self.ring = FrameRing(cfg.buffer_s, cfg.fps, cfg.width_px, cfg.jpeg_quality)
        # Started with the first clip: a camera built but never run leaves no thread behind.
        self.encoder = ClipEncoder(cfg, on_ready)
        self._jobs: dict[str, _Job] = {}  # event_id -> job
        self._ids: dict[str, tuple[str, str]] = {}  # event_id -> (clip id, snapshot id)
        self._private = np.asarray(
            [i for i, n in enumerate(class_names) if n in set(privacy.classes)], np.int64
        )
        self.dropped_frames = 0
        #: Clips by remuxing the camera's packets, unless something must be burned in.
        self.cutter = (
            ClipCutter(packets, cfg.max_s, RemuxWriter(on_ready))
            if packets is not None and not privacy.blur_people
            else None
        )

    def _enqueue(self, what: str, job: _Job, frame: BufferedFrame | None = None) -> None:
        if self.encoder.ident is None:
            self.encoder.start()
        try:
            self.encoder.queue.put_nowait(
                (what, job, frame.ts_s if frame else 0.0, frame.jpeg if frame else b"")
            )
        except queue.Full:
            if what == "close":
                self.encoder.queue.put((what, job, 0.0, b""))  # a close must not be lost
            else:
                self.dropped_frames += 1

    def observe(
        self, frame: Frame, tracks: Detections, events: list[Event], zones: list[Zone]
    ) -> list[Event]:
        """Buffer the frame, start and feed clips; return events with their media ids."""
        image = frame.image_bgr
        if self.privacy.blur_people and len(tracks):
            people = tracks[np.isin(tracks.class_id, self._private)]
            image = blur_boxes(image, people.xyxy, self.privacy.upper_fraction)
        if self.cutter is not None:
            return self._observe_packets(self.cutter, frame, image, events, zones)
        buffered = self.ring.push(frame.ts_s, image)
        out: list[Event] = []
        for ev in events:
            if ev.phase == "start":
                self._start(ev, image, zones, frame)
            elif ev.phase == "end" and ev.event_id in self._jobs:
                self._jobs[ev.event_id].end_ts = frame.ts_s + self.cfg.post_roll_s
            out.append(self.attach(ev))
        if buffered is not None:
            for event_id, job in list(self._jobs.items()):
                if job.last_ts < buffered.ts_s:
                    job.last_ts = buffered.ts_s
                    self._enqueue("frame", job, buffered)
                over = buffered.ts_s - job.start_ts >= self.cfg.max_s
                if over or (job.end_ts is not None and buffered.ts_s >= job.end_ts):
                    self._enqueue("close", job)
                    del self._jobs[event_id]
        return out

    def _observe_packets(
        self,
        cutter: ClipCutter,
        frame: Frame,
        image: np.ndarray,
        events: list[Event],
        zones: list[Zone],
    ) -> list[Event]:
        out: list[Event] = []
        for ev in events:
            if ev.phase == "start":
                clip_id, snap_id = str(uuid.uuid4()), str(uuid.uuid4())
                self._ids[ev.event_id] = (clip_id, snap_id)
                path = self.media_dir / f"{clip_id}.mp4"
                start_ts = ev.ts - self.cfg.pre_roll_s
                cutter.start(RemuxJob(clip_id, ev.event_id, path, start_ts))
                self._snapshot(ev, image, zones, frame, snap_id)
            elif ev.phase == "end" and ev.event_id in cutter.jobs:
                cutter.jobs[ev.event_id].end_ts = frame.ts_s + self.cfg.post_roll_s
            out.append(self.attach(ev))
        cutter.feed()
        return out

    def ended(self, events: list[Event], ts_s: float) -> list[Event]:
        """Incidents closed between frames (their rules were replaced by a new config or
        mode): their clips run on for the post-roll from ``ts_s``; the events get their ids."""
        jobs: dict[str, _Job] | dict[str, RemuxJob] = (
            self.cutter.jobs if self.cutter is not None else self._jobs
        )
        for ev in events:
            job = jobs.get(ev.event_id)
            if ev.phase == "end" and job is not None:
                job.end_ts = ts_s + self.cfg.post_roll_s
        return [self.attach(ev) for ev in events]

    def attach(self, ev: Event) -> Event:
        """The event with the ids of its evidence (forgotten after its end)."""
        ids = self._ids.pop(ev.event_id, None) if ev.phase == "end" else self._ids.get(ev.event_id)
        return replace(ev, clip_id=ids[0], snapshot_id=ids[1]) if ids else ev

    def _start(self, ev: Event, image: np.ndarray, zones: list[Zone], frame: Frame) -> None:
        clip_id, snap_id = str(uuid.uuid4()), str(uuid.uuid4())
        self._ids[ev.event_id] = (clip_id, snap_id)
        job = _Job(
            clip_id,
            ev.event_id,
            start_ts=ev.ts - self.cfg.pre_roll_s,
            path=self.media_dir / f"{clip_id}.mp4",
        )
        for f in self.ring.since(job.start_ts):
            job.last_ts = f.ts_s
            self._enqueue("frame", job, f)
        self._jobs[ev.event_id] = job
        self._snapshot(ev, image, zones, frame, snap_id)

    def _snapshot(
        self, ev: Event, image: np.ndarray, zones: list[Zone], frame: Frame, snap_id: str
    ) -> None:
        from edge.evidence.annotate import draw_event

        shot = draw_event(image, ev, [z for z in zones if z.name == ev.zone])
        path = self.media_dir / f"{snap_id}.jpg"
        shot = scale_to_width(shot, min(shot.shape[1], 1280))
        cv2.imwrite(str(path), shot, [cv2.IMWRITE_JPEG_QUALITY, 90])
        self.on_ready(MediaItem.of_file(snap_id, ev.event_id, "snapshot", path, frame.ts_s, 0.0))

    def close(self, deadline_mono_s: float | None = None) -> None:
        """The stream ended: finish every clip, wait for the encoder. Past ``deadline_mono_s``
        (time.monotonic()) frames still queued are skipped and each clip ends with what it
        has, so that stopping is bounded however far encoding fell behind."""
        if self.cutter is not None:
            # Packets already read are written; a clip ends with what the camera sent so far.
            self.cutter.feed()
            self.cutter.close_all()
            self.cutter.writer.stop()
        self.encoder.deadline_mono_s = deadline_mono_s
        for job in self._jobs.values():
            self._enqueue("close", job)
        self._jobs.clear()
        if self.encoder.ident is not None:
            self.encoder.queue.put(None)
            self.encoder.join()
        if self.encoder.skipped_frames:
            log.info(
                "clips cut short at stop: %d queued frames not encoded",
                self.encoder.skipped_frames,
            )
