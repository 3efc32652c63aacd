"""Camera streams (and files played as cameras) read with PyAV: packets and frames.

A camera's reader demuxes the compressed packets once. Every packet goes to the camera's
packet ring (the record role: clips are cut from it by remuxing); frames are decoded only
when the input has the detect role, and converted to BGR only when the detect stage is due
for one (``want``), since converting every frame of a 25 fps stream to feed a 5 fps stage
is wasted work. FFmpeg demuxes, decodes and converts with the GIL released (PyAV's
``nogil`` sections), so many cameras' readers run side by side on the box's cores.

Times are on the camera clock shared by frames and packets: a file's media time plus
``epoch_s`` (looping runs on), a stream's own presentation time anchored to wall-clock time
at its first packet (and re-anchored after a reconnect or a jump), so a clip cut by time
from the packets matches the frames the rules saw.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.container
import av.error
import numpy as np

from contract.config.camera import ReconnectConfig
from edge.errors import SourceError
from edge.sources.base import Frame, FrameSource, SourceState
from edge.sources.live import StateCallback, redact
from edge.sources.packets import PacketRing, StreamHeader

log = logging.getLogger(__name__)

#: A stream whose clock strays this far from wall-clock time is re-anchored.
_REANCHOR_S = 2.0
_MISSING_FRAMES_TOLERATED = 2


@dataclass(frozen=True)
class ReadOptions:
    """How the reader treats its input: a live stream is reconnected; a file is paced and
    may loop."""

    live: bool
    reconnect: ReconnectConfig
    realtime: bool = True
    loop: bool = False
    epoch_s: float = 0.0
    #: Files: where the first pass begins (at the keyframe before), seconds into the file.
    start_s: float = 0.0
    #: Decode frames (the detect role); False reads packets only (a record-only input).
    decode: bool = True


class _Clock:
    """Maps a connection's stream time to the camera clock."""

    def __init__(self, options: ReadOptions, offset_s: float) -> None:
        self.live = options.live
        self.base_s = options.epoch_s + offset_s
        self.pts0: float | None = None
        self.last_s = self.base_s

    def __call__(self, pts: int | None, time_base: Fraction | None) -> float:
        if pts is None or time_base is None:
            # RTSP sessions start with a packet without a time: before the anchor, it is now.
            return time.time() if self.live and self.pts0 is None else self.last_s
        media_s = pts * float(time_base)  # float: Fraction arithmetic per packet adds up
        if self.pts0 is None:
            self.pts0 = media_s
            if self.live:
                self.base_s = time.time()
        ts_s = self.base_s + media_s - self.pts0
        if self.live and abs(ts_s - time.time()) > _REANCHOR_S:
            self.base_s, self.pts0 = time.time(), media_s
            ts_s = self.base_s
        self.last_s = max(self.last_s, ts_s) if not self.live else ts_s
        return ts_s


def stream_header(stream: av.VideoStream, keyframe: av.Packet[Any], segment: int) -> StreamHeader:
    """A one-keyframe MP4 of ``stream``: codec parameters a muxer can copy at any time."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        copy = out.add_stream_from_template(stream)
        # A copy of the packet: muxing re-targets a packet, and the reader still decodes it.
        packet = av.Packet(bytes(keyframe))
        packet.stream, packet.time_base = copy, keyframe.time_base
        packet.pts, packet.dts, packet.is_keyframe = 0, 0, True
        out.mux(packet)
    return StreamHeader(segment, buf.getvalue(), stream.codec_context.name, stream_wh(stream))


def stream_wh(stream: av.VideoStream) -> tuple[int, int]:
    return int(stream.codec_context.width), int(stream.codec_context.height)


class PyAvSource(FrameSource):
    """One input of a camera. ``packets`` receives every packet (None: not recorded);
    ``want(ts_s)`` says whether a decoded frame is due (None: every frame)."""

    def __init__(
        self,
        uri: str,
        options: ReadOptions,
        *,
        packets: PacketRing | None = None,
        want: Callable[[float], bool] | None = None,
        on_state: StateCallback | None = None,
    ) -> None:
        self.uri = uri
        self.options = options
        self.packets = packets
        self._want = want
        self._on_state = on_state
        self._stop = threading.Event()
        self._fps = 25.0
        self._count: int | None = None
        self._segment = 0
        self._index = 0
        self.decoded = 0
        self._decoded_this_pass = 0
        self.reconnects = 0
        self.loops = 0
        if not options.live:
            self._probe_file()

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def frame_count(self) -> int | None:
        return self._count

    def stop(self) -> None:
        """Ask ``frames()`` to return at the next packet or backoff wait."""
        self._stop.set()

    def close(self) -> None:
        self.stop()

    def _set_state(self, state: SourceState, detail: str) -> None:
        self.state = state
        log.info("source %s: %s %s", redact(self.uri), state.value, detail)
        if self._on_state:
            self._on_state(state, detail)

    def _open(self) -> av.container.InputContainer:
        timeout_s = self.options.reconnect.read_timeout_s
        opts = {"rtsp_transport": "tcp"} if self.uri.lower().startswith("rtsp") else {}
        try:
            return av.open(self.uri, "r", options=opts, timeout=(timeout_s, timeout_s))
        except (av.error.FFmpegError, OSError) as exc:
            what = "stream" if self.options.live else "video (not a video file, or corrupt)"
            raise SourceError(f"{redact(self.uri)}: cannot open as {what}: {exc}") from exc

    def _probe_file(self) -> None:
        with self._open() as container:
            if not container.streams.video:
                raise SourceError(f"{self.uri}: no video stream (not a video file, or corrupt)")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            if rate and 0 < float(rate) < 1000:
                self._fps = float(rate)
            self._count = int(stream.frames) or None

    def frames(self) -> Iterator[Frame]:
        if self.options.live:
            yield from self._live()
        else:
            yield from self._file()

    def _file(self) -> Iterator[Frame]:
        self._set_state(SourceState.STREAMING, "")
        offset_s, start_mono = 0.0, time.monotonic()
        while not self._stop.is_set():
            clock = _Clock(self.options, offset_s)
            played = 0
            seek_s = self.options.start_s if self.loops == 0 else 0.0
            with self._open() as container:
                if seek_s > 0:
                    container.seek(round(seek_s * 1_000_000))  # to the keyframe before
                for frame in self._play(container, clock, start_mono):
                    played += 1
                    yield frame
            if self._stop.is_set():
                break  # stopped mid-pass: not a short file
            if seek_s == 0:  # a pass from the middle is short by design
                self._check_complete(self._played(played))
            if not self.options.loop or self._stop.is_set():
                break
            self.loops += 1
            offset_s = clock.last_s - self.options.epoch_s + 1.0 / self._fps
            self._segment += 1
        self.state = SourceState.ENDED

    def _played(self, yielded: int) -> int:
        return self._decoded_this_pass if self.options.decode else yielded

    def _check_complete(self, played: int) -> None:
        if not self.options.decode:
            return
        if played == 0:
            self.state = SourceState.FAILED
            raise SourceError(f"{self.uri}: no frame could be decoded (corrupt or empty video)")
        if self._count is not None and played < self._count - _MISSING_FRAMES_TOLERATED:
            self.state = SourceState.FAILED
            raise SourceError(
                f"{self.uri}: video ends after {played} of {self._count} frames "
                "(file truncated or corrupt)"
            )

    def _live(self) -> Iterator[Frame]:
        failures, delay_s = 0, self.options.reconnect.initial_delay_s
        self._set_state(SourceState.CONNECTING, "")
        while not self._stop.is_set():
            got = False
            try:
                with self._open() as container:
                    for frame in self._play(container, _Clock(self.options, 0.0), None):
                        if not got:
                            got, failures = True, 0
                            delay_s = self.options.reconnect.initial_delay_s
                        yield frame
                    got = got or self._decoded_this_pass > 0
            except (SourceError, av.error.FFmpegError, OSError) as exc:
                log.info("source %s: %s", redact(self.uri), exc)
            if self._stop.is_set():
                break
            failures = 0 if got else failures + 1
            limit = self.options.reconnect.max_attempts
            if limit is not None and failures >= limit:
                self._set_state(SourceState.FAILED, f"after {failures} attempts")
                raise SourceError(
                    f"{redact(self.uri)}: stream unreachable or not delivering frames "
                    f"after {failures} attempts"
                )
            self.reconnects += 1
            self._segment += 1
            what = "dropped" if got else "unreachable"
            self._set_state(SourceState.RECONNECTING, f"{what}; retry in {delay_s:.1f}s")
            if self._stop.wait(delay_s):
                break
            delay_s = min(delay_s * 2, self.options.reconnect.max_delay_s)
        self._set_state(SourceState.ENDED, "stopped")

    def _play(
        self, container: av.container.InputContainer, clock: _Clock, start_mono: float | None
    ) -> Iterator[Frame]:
        """Demux one connection (one pass of a file); yield the due frames."""
        if not container.streams.video:
            raise SourceError(f"{redact(self.uri)}: no video stream")
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1  # cameras run side by side: one core each at most
        self._decoded_this_pass = 0
        header: StreamHeader | None = None
        streaming = False
        for packet in container.demux(stream):
            if self._stop.is_set():
                return
            if packet.size == 0:  # the end: drain the frames the decoder still holds
                if self.options.decode:
                    for decoded in packet.decode():
                        if (frame := self._frame(decoded, clock)) is not None:
                            yield frame
                continue
            # pts first: the clock's zero is the first packet's presentation time
            pts_s = clock(packet.pts if packet.pts is not None else packet.dts, packet.time_base)
            dts_s = clock(packet.dts, packet.time_base) if packet.dts is not None else pts_s
            if start_mono is not None and self.options.realtime:
                self._pace(start_mono, dts_s)
            if self.packets is not None:
                if header is None and packet.is_keyframe:
                    header = stream_header(stream, packet, self._segment)
                if header is not None:
                    self.packets.push(bytes(packet), pts_s, dts_s, packet.is_keyframe, header)
            if not self.options.decode:
                if not streaming:
                    streaming = True
                    self._set_state(SourceState.STREAMING, "{}x{}".format(*stream_wh(stream)))
                self._decoded_this_pass += 1  # a record-only input: packets count as alive
                continue
            for decoded in packet.decode():
                frame = self._frame(decoded, clock)
                if not streaming:
                    streaming = True
                    self._set_state(SourceState.STREAMING, "{}x{}".format(*stream_wh(stream)))
                if frame is not None:
                    yield frame

    def _frame(self, decoded: av.VideoFrame, clock: _Clock) -> Frame | None:
        self.decoded += 1
        self._decoded_this_pass += 1
        ts_s = clock(decoded.pts, decoded.time_base)
        index = self._index
        self._index += 1
        if self._want is not None and not self._want(ts_s):
            return None
        image = np.asarray(decoded.to_ndarray(format="bgr24"), dtype=np.uint8)  # no copy: uint8
        return Frame(image_bgr=image, ts_s=ts_s, index=index)

    def _pace(self, start_mono: float, ts_s: float) -> None:
        delay_s = start_mono + (ts_s - self.options.epoch_s) - time.monotonic()
        if delay_s > 0:
            self._stop.wait(delay_s)
