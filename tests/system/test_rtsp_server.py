"""The RTSP camera of the tests (tests/rtsphelpers.py, tests/rtsp_serve.py), read as the
edge reads a camera: PyAV over interleaved TCP, a main and a substream of a real video."""

from __future__ import annotations

import base64
import itertools
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
from av.video.stream import VideoStream

from tests import rtsphelpers
from tests.rtsphelpers import PYAV_RTSP_OPTIONS, RtspServer, make_camera_streams

GOP_FRAMES = 10
CLIP_S = 4.0  # car-detection.mp4 is 12.5 fps: 50 frames, five whole GOPs
OPEN_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Packet:
    arrival_s: float  # monotonic clock
    pts: int | None
    keyframe: bool


@dataclass(frozen=True)
class Reading:
    width: int
    height: int
    time_base: float
    extradata: bytes
    packets: tuple[Packet, ...]
    frames: int  # decoded
    frame_sizes: frozenset[tuple[int, int]]


@pytest.fixture(scope="module")
def camera(
    tmp_path_factory: pytest.TempPathFactory, video_path: Callable[[str], Path]
) -> tuple[Path, Path]:
    return make_camera_streams(
        video_path("car-detection.mp4"),
        tmp_path_factory.mktemp("camera"),
        gop_frames=GOP_FRAMES,
        seconds=CLIP_S,
    )


@pytest.fixture(scope="module")
def server(camera: tuple[Path, Path]) -> Iterator[RtspServer]:
    main, sub = camera
    with RtspServer({"main": main, "sub": sub}) as running:
        yield running


def read_for(url: str, seconds: float) -> Reading:
    """Read (and decode) a stream for `seconds` of wall time after it opened."""
    with av.open(url, options=PYAV_RTSP_OPTIONS, timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S)) as c:
        stream = c.streams.video[0]
        ctx = stream.codec_context
        packets, frames, sizes = [], 0, set()
        end = time.monotonic() + seconds
        for packet in c.demux(stream):
            if packet.size == 0:
                continue
            packets.append(Packet(time.monotonic(), packet.pts, packet.is_keyframe))
            for frame in packet.decode():
                frames += 1
                sizes.add((frame.width, frame.height))
            if packets[-1].arrival_s >= end:
                break
        assert stream.time_base is not None
        return Reading(
            ctx.width,
            ctx.height,
            float(stream.time_base),
            ctx.extradata or b"",
            tuple(packets),
            frames,
            frozenset(sizes),
        )


def nal_types(annexb: bytes) -> list[int]:
    return [part[0] & 0x1F for part in re.split(b"\x00\x00\x01", annexb) if part]


def file_facts(path: Path) -> tuple[int, int, list[int], list[int]]:
    """width, height, keyframe indices and pts of an MP4's video packets."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        packets = [p for p in c.demux(stream) if p.size]
        keys = [i for i, p in enumerate(packets) if p.is_keyframe]
        return stream.width, stream.height, keys, [p.pts or 0 for p in packets]


def test_camera_streams_are_two_sizes_of_the_same_frames(camera: tuple[Path, Path]) -> None:
    main, sub = camera
    main_w, main_h, main_keys, main_pts = file_facts(main)
    sub_w, sub_h, sub_keys, sub_pts = file_facts(sub)
    assert (main_w, main_h, sub_w, sub_h) == (1280, 720, 320, 180)  # 768x432 source
    assert main_pts == sub_pts
    assert len(main_pts) == 50  # 4 s at 12.5 fps
    assert main_pts == sorted(set(main_pts))  # no B-frames: decode order is display order
    assert main_keys == sub_keys == list(range(0, 50, GOP_FRAMES))


def describe(url: str) -> str:
    """The SDP of an RTSP DESCRIBE, as any client gets it."""
    host, port = re.match(r"rtsp://([^:/]+):(\d+)/", url).groups()  # type: ignore[union-attr]
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: *(\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        while len(body) < length:
            body += s.recv(4096)
    assert head.startswith(b"RTSP/1.0 200"), head
    return body.decode()


def test_sdp_carries_the_files_parameter_sets(
    server: RtspServer, camera: tuple[Path, Path]
) -> None:
    sdp = describe(server.url("main"))
    assert "a=rtpmap:96 H264/90000" in sdp
    sets = re.search(r"sprop-parameter-sets=([^;\s]+)", sdp)
    assert sets is not None, sdp
    sps, pps = (base64.b64decode(s) for s in sets.group(1).split(","))
    with av.open(str(camera[0])) as c:
        avcc = c.streams.video[0].codec_context.extradata or b""
    assert [sps[0] & 0x1F, pps[0] & 0x1F] == [7, 8]
    # The MP4's own SPS/PPS (its avcC), not a re-encoder's.
    assert sps in avcc
    assert pps in avcc


def check_live(reading: Reading, width: int, height: int) -> None:
    assert (reading.width, reading.height) == (width, height)
    assert reading.frame_sizes == {(width, height)}
    assert reading.frames >= len(reading.packets) - 1  # every packet decodes
    assert {7, 8} <= set(nal_types(reading.extradata))  # SPS and PPS, from the SDP
    # Keyframes every GOP_FRAMES packets (one access unit per packet), across loops too.
    keys = [i for i, p in enumerate(reading.packets) if p.keyframe]
    assert keys == list(range(0, len(reading.packets), GOP_FRAMES))
    # Presentation times go up by one frame (1/12.5 s) each, past the file's end. FFmpeg
    # (PyAV 18) gives the first packet of an RTSP session no pts.
    assert [i for i, p in enumerate(reading.packets) if p.pts is None] in ([], [0])
    timed = [p for p in reading.packets if p.pts is not None]
    pts_s = [p.pts * reading.time_base for p in timed if p.pts is not None]
    steps_s = {round(b - a, 6) for a, b in itertools.pairwise(pts_s)}
    assert steps_s == {0.08}
    assert pts_s[-1] > CLIP_S + 0.5
    # Real time: once the burst buffered while FFmpeg probed the stream is read (its
    # decoding can take a second on a loaded machine), the stream's clock and the wall
    # clock advance alike: over the last 2 s of the reading.
    start_s = reading.packets[-1].arrival_s - 2.0
    later = [(p.arrival_s, t) for p, t in zip(timed, pts_s, strict=True) if p.arrival_s > start_s]
    media_s = later[-1][1] - later[0][1]
    wall_s = later[-1][0] - later[0][0]
    assert wall_s > 1.5
    assert 0.8 < media_s / wall_s < 1.25, (media_s, wall_s)  # loose: two shared CPU cores


@pytest.mark.slow
def test_main_and_sub_stream_in_real_time_past_the_files_end(server: RtspServer) -> None:
    """Both streams read at once, as the edge does (detect on sub, record from main), for
    longer than the 4 s file: the looped stream goes on."""
    with ThreadPoolExecutor(2) as pool:
        main_job = pool.submit(read_for, server.url("main"), 3.5)
        sub_job = pool.submit(read_for, server.url("sub"), 3.5)
        main, sub = main_job.result(), sub_job.result()
    check_live(main, 1280, 720)
    check_live(sub, 320, 180)


def drain(packets: Iterator[av.Packet[VideoStream]]) -> str:
    """Read what is buffered, until the stream ends: how it ended."""
    try:
        for _ in packets:
            pass
    except av.FFmpegError:
        return "error"
    return "eof"


@pytest.mark.slow
def test_camera_goes_offline_and_comes_back_on_the_same_url(camera: tuple[Path, Path]) -> None:
    with RtspServer({"sub": camera[1]}) as server:
        url = server.url("sub")
        with av.open(url, options=PYAV_RTSP_OPTIONS, timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S)) as c:
            packets = c.demux(c.streams.video[0])
            assert next(packets).is_keyframe
            server.stop()
            stopped = time.monotonic()
            assert drain(packets) in ("eof", "error")
            assert time.monotonic() - stopped < READ_TIMEOUT_S
        with pytest.raises(ConnectionRefusedError):
            av.open(url, options=PYAV_RTSP_OPTIONS, timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S))
        server.start()
        assert server.url("sub") == url
        reading = read_for(url, 1.0)
        assert reading.frames >= 10
        assert reading.frame_sizes == {(320, 180)}


@pytest.mark.slow
def test_without_loop_the_stream_ends_with_the_file(camera: tuple[Path, Path]) -> None:
    with RtspServer({"sub": camera[1]}, loop=False) as server:
        started = time.monotonic()
        reading = read_for(server.url("sub"), 30)
        took_s = time.monotonic() - started
    assert len(reading.packets) == 50
    assert CLIP_S - 0.5 < took_s < CLIP_S + 3  # played in real time, then EOF


def test_a_file_that_is_not_h264_mp4_fails_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(RuntimeError, match=r"notes\.mp4"), RtspServer({"cam": bad}):
        pass


def test_a_python_without_gi_fails_naming_the_debian_packages(
    camera: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The project's own interpreter has no gi: the server script under it is a machine
    without the Debian packages."""
    monkeypatch.setattr(rtsphelpers, "SYSTEM_PYTHON", Path(sys.executable))
    with (
        pytest.raises(RuntimeError, match=r"gir1\.2-gst-rtsp-server-1\.0"),
        RtspServer({"cam": camera[1]}),
    ):
        pass
