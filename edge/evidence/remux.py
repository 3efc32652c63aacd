"""Clips cut from the camera's own packets: remuxed into MP4, never decoded or encoded.

This is how NVRs record: the packets the camera sent are written again into a new container,
so a clip costs a file write instead of a decoder and an encoder, and has the camera's full
resolution and frame rate. A clip starts at the keyframe at or before its start time (so it
decodes from its first frame) and holds packets of one connection only. Writing runs in its
own thread behind a queue, like encoding: the detect stage only hands packets over.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.container

from edge.evidence.media import MediaItem
from edge.sources.packets import PacketRing, StoredPacket

log = logging.getLogger(__name__)

_MS = Fraction(1, 1000)


@dataclass
class RemuxJob:
    clip_id: str
    event_id: str
    path: Path
    start_ts: float
    end_ts: float | None = None  # known once the event ends (plus post-roll)
    last_seq: int = -1
    segment: int | None = None
    last_pts_s: float = 0.0


@dataclass
class _OpenClip:
    container: av.container.OutputContainer
    stream: av.VideoStream
    t0_s: float
    first_pts_s: float
    last_pts_s: float
    last_dts_ms: int = -(10**9)
    frame_s: float = 0.04
    packets: int = 0


@dataclass
class ClipCutter:
    """One camera's remuxed clips: ``start`` at an event, ``feed`` every frame, ``end``."""

    ring: PacketRing
    max_s: float
    writer: RemuxWriter
    jobs: dict[str, RemuxJob] = field(default_factory=dict)

    def start(self, job: RemuxJob) -> None:
        packets = self.ring.since(job.start_ts)
        self.jobs[job.event_id] = job
        self._hand(job, packets)

    def feed(self) -> None:
        """Hand each open clip the packets that arrived; close the ones that are done."""
        for event_id, job in list(self.jobs.items()):
            self._hand(job, self.ring.after(job.last_seq))
            over = job.last_pts_s - job.start_ts >= self.max_s
            if over or (job.end_ts is not None and job.last_pts_s >= job.end_ts):
                self.writer.put(job, None)
                del self.jobs[event_id]

    def _hand(self, job: RemuxJob, packets: list[StoredPacket]) -> None:
        if not packets:
            return
        job.last_seq = packets[-1].seq
        if job.segment is None:
            job.segment = packets[0].header.segment
        same = [p for p in packets if p.header.segment == job.segment]
        if len(same) < len(packets):  # the camera reconnected: this clip ends at the gap
            job.end_ts = job.last_pts_s
        if same:
            job.last_pts_s = same[-1].pts_s
            self.writer.put(job, same)

    def close_all(self) -> None:
        for job in self.jobs.values():
            self.writer.put(job, None)
        self.jobs.clear()


class RemuxWriter(threading.Thread):
    """Writes clips from ("packets", job, list) items; None as the list closes the clip."""

    def __init__(self, on_ready: Callable[[MediaItem], None], queue_items: int = 1000) -> None:
        super().__init__(name="clip-remux", daemon=True)
        self.on_ready = on_ready
        self.queue: queue.Queue[tuple[RemuxJob, list[StoredPacket] | None] | None] = queue.Queue(
            queue_items
        )
        self._open: dict[str, _OpenClip] = {}
        self.written_packets = 0

    def put(self, job: RemuxJob, packets: list[StoredPacket] | None) -> None:
        if self.ident is None:
            self.start()
        self.queue.put((job, packets))  # blocks only if writing is far behind: never drops

    def run(self) -> None:
        while (item := self.queue.get()) is not None:
            job, packets = item
            try:
                if packets is None:
                    self._close(job)
                else:
                    self._write(job, packets)
            except Exception:
                log.exception("clip %s: remuxing failed", job.clip_id)
                self._discard(job)

    def stop(self) -> None:
        if self.ident is not None:
            self.queue.put(None)
            self.join()

    def _write(self, job: RemuxJob, packets: list[StoredPacket]) -> None:
        clip = self._open.get(job.clip_id)
        if clip is None:
            clip = self._open[job.clip_id] = _open_clip(job.path, packets[0])
        for p in packets:
            dts_ms = round((p.dts_s - clip.t0_s) * 1000)
            dts_ms = max(dts_ms, clip.last_dts_ms + 1)  # a muxer needs rising decode times
            pts_ms = max(round((p.pts_s - clip.t0_s) * 1000), dts_ms)
            out = av.Packet(p.data)
            out.stream, out.time_base = clip.stream, _MS
            out.pts, out.dts, out.is_keyframe = pts_ms, dts_ms, p.keyframe
            clip.container.mux(out)
            if p.pts_s > clip.last_pts_s:
                clip.frame_s = min(max(p.pts_s - clip.last_pts_s, 0.001), 1.0)
            clip.last_dts_ms, clip.last_pts_s = dts_ms, max(clip.last_pts_s, p.pts_s)
            clip.packets += 1
        self.written_packets += len(packets)

    def _close(self, job: RemuxJob) -> None:
        clip = self._open.pop(job.clip_id, None)
        if clip is None:
            return
        clip.container.close()
        duration_s = clip.last_pts_s - clip.first_pts_s + clip.frame_s
        self.on_ready(
            MediaItem.of_file(
                job.clip_id, job.event_id, "clip", job.path, clip.first_pts_s, duration_s
            )
        )

    def _discard(self, job: RemuxJob) -> None:
        clip = self._open.pop(job.clip_id, None)
        if clip is not None:
            try:
                clip.container.close()
            except Exception:  # already failing: the clip is lost, the error logged above
                log.debug("clip %s: close after failure", job.clip_id, exc_info=True)
        job.path.unlink(missing_ok=True)


def _open_clip(path: Path, first: StoredPacket) -> _OpenClip:
    """An MP4 whose one stream copies the codec parameters of the packets' connection;
    ``+faststart`` puts the index first, so a browser plays it while it downloads."""
    template = av.open(io.BytesIO(first.header.template_mp4))
    container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
    try:
        stream = container.add_stream_from_template(template.streams.video[0])
        stream.time_base = _MS
    finally:
        template.close()
    # Time zero is the keyframe's presentation: the clip's first picture shows at 0 s.
    return _OpenClip(container, stream, first.pts_s, first.pts_s, first.pts_s)
