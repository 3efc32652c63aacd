"""The camera's own compressed packets, as read: the record role's buffer.

A camera's reader pushes every video packet here with its time on the camera's clock (the
same clock as its frames' ``ts_s``); evidence cuts clips from it by remuxing, as NVRs do,
instead of decoding and encoding frames. The ring always starts at a keyframe, so any cut
from a keyframe on decodes. One reader thread writes, the detect stage reads: a lock guards
the deque, and packets are immutable.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

#: Times closer than this are the same instant (float arithmetic on stream time bases).
_SAME_TIME_S = 1e-6


@dataclass(frozen=True)
class StreamHeader:
    """What a muxer needs to write a stream's packets again: a one-keyframe MP4 of the
    connection the packets came from (PyAV copies codec parameters only from an open stream,
    so the header is kept as a tiny file that can be opened at any time)."""

    #: Counts connections of the reader: packets of different connections never share a clip.
    segment: int
    template_mp4: bytes
    codec: str
    wh: tuple[int, int]


@dataclass(frozen=True)
class StoredPacket:
    seq: int
    data: bytes
    #: Presentation and decoding time on the camera clock (s); equal without B-frames.
    pts_s: float
    dts_s: float
    keyframe: bool
    header: StreamHeader


class PacketRing:
    """Packets at most ``seconds`` old, trimmed only at keyframes so the ring decodes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._packets: deque[StoredPacket] = deque()
        self._next_seq = 0
        self.bytes = 0

    def push(
        self, data: bytes, pts_s: float, dts_s: float, keyframe: bool, header: StreamHeader
    ) -> None:
        with self._lock:
            if not self._packets and not keyframe:
                return  # a ring (and so every clip) begins with a keyframe
            self._packets.append(StoredPacket(self._next_seq, data, pts_s, dts_s, keyframe, header))
            self._next_seq += 1
            self.bytes += len(data)
            if keyframe:
                self._trim(pts_s)

    def _trim(self, now_s: float) -> None:
        """Drop whole keyframe intervals while the next one still covers ``seconds``."""
        packets = self._packets
        while True:
            second_key = next((i for i, p in enumerate(packets) if i and p.keyframe), None)
            if second_key is None or now_s - packets[second_key].pts_s < self.seconds:
                return
            for _ in range(second_key):
                self.bytes -= len(packets.popleft().data)

    def since(self, start_s: float) -> list[StoredPacket]:
        """From the last keyframe at or before ``start_s`` (or the oldest one held) on, all of
        one connection: the one of that keyframe."""
        with self._lock:
            packets = list(self._packets)
        keys = [i for i, p in enumerate(packets) if p.keyframe]
        if not keys:
            return []
        first = keys[0]
        for i in keys:
            if packets[i].pts_s <= start_s + _SAME_TIME_S:
                first = i
        segment = packets[first].header.segment
        return [p for p in packets[first:] if p.header.segment == segment]

    def after(self, seq: int) -> list[StoredPacket]:
        """Packets pushed after the one numbered ``seq``."""
        with self._lock:
            if not self._packets or self._packets[-1].seq <= seq:
                return []
            first_seq = self._packets[0].seq
            start = max(0, seq + 1 - first_seq)
            return [self._packets[i] for i in range(start, len(self._packets))]

    def __len__(self) -> int:
        with self._lock:
            return len(self._packets)
