"""Real RTSP cameras for the tests: H.264 main and sub streams built from a sample video
(make_camera_streams), served over RTSP by GStreamer's RTSP server in a child process
(RtspServer, which runs tests/rtsp_serve.py under Debian's python3, the one that has `gi`).

    main, sub = make_camera_streams(video, tmp_path / "cam", seconds=8)
    with RtspServer({"main": main, "sub": sub}) as server:
        av.open(server.url("sub"), options=PYAV_RTSP_OPTIONS, timeout=(10, 5))
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream

from tests.deploy import free_port

SERVE_SCRIPT = Path(__file__).resolve().parent / "rtsp_serve.py"
#: Debian's interpreter: python3-gi and the GStreamer typelibs exist only for it.
SYSTEM_PYTHON = Path("/usr/bin/python3")
#: What scripts/setup.sh installs for these tests (exit code 3 of rtsp_serve.py: gi missing).
DEBIAN_PACKAGES = (
    "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly"
)
EXIT_NO_GI = 3
EXIT_PORT_BUSY = 4
READY_TIMEOUT_S = 20.0
STOP_GRACE_S = 3.0
START_ATTEMPTS = 3  # a free port can be taken between picking it and the server binding it
#: What opens these streams with PyAV: interleaved TCP (no UDP ports, no loss), and a socket
#: I/O timeout in microseconds (FFmpeg >= 5 calls it `timeout`; `stimeout` is gone).
PYAV_RTSP_OPTIONS = {"rtsp_transport": "tcp", "timeout": "5000000"}


# --- the camera's two encodings -----------------------------------------------------------


def _even_size(src_w: int, src_h: int, width_px: int) -> tuple[int, int]:
    """width_px wide (made even) with the source's aspect ratio and an even height: yuv420p
    and most hardware decoders need both even."""
    width = width_px - width_px % 2
    height = max(2, round(src_h * width / src_w / 2) * 2)
    return width, height


def _h264_stream(
    out: av.container.OutputContainer, rate: Fraction, wh: tuple[int, int], gop_frames: int
) -> VideoStream:
    stream = out.add_stream(
        "libx264",
        rate=rate,
        options={
            "preset": "veryfast",
            # A fixed GOP without B-frames, like most IP cameras: an IDR every gop_frames
            # frames, never one more from scene cuts, and decode order = display order.
            "x264-params": f"keyint={gop_frames}:min-keyint={gop_frames}:scenecut=0:bframes=0",
            "bf": "0",
            "g": str(gop_frames),
            "keyint_min": str(gop_frames),
            "sc_threshold": "0",
        },
    )
    stream.width, stream.height = wh
    stream.pix_fmt = "yuv420p"
    stream.time_base = 1 / rate
    stream.codec_context.max_b_frames = 0
    stream.codec_context.gop_size = gop_frames
    # Frame threads, not slice threads: one slice per frame, as most cameras send.
    stream.codec_context.thread_type = "FRAME"
    return stream


def _resampled(
    frames: Iterator[VideoFrame], src_rate: Fraction, out_rate: Fraction, seconds: float | None
) -> Iterator[VideoFrame]:
    """The source's frames at out_rate, each output instant showing the latest source frame
    at or before it (frames dropped or repeated), for at most `seconds`."""
    n = 0
    prev: VideoFrame | None = None
    first_s: float | None = None
    limit_s = float("inf") if seconds is None else seconds
    for frame in frames:
        t_s = float(frame.time) if frame.time is not None else n / float(src_rate)
        first_s = t_s if first_s is None else first_s
        t_s -= first_s
        while prev is not None and n / out_rate < t_s and n / out_rate < limit_s:
            yield prev
            n += 1
        if n / out_rate >= limit_s:
            return
        prev = frame
    end_s = min(limit_s, (t_s if prev is not None else 0.0) + 1 / float(src_rate))
    while prev is not None and n / out_rate < end_s:
        yield prev
        n += 1


def make_camera_streams(
    src_video: Path,
    out_dir: Path,
    *,
    main_width_px: int = 1280,
    sub_width_px: int = 320,
    fps: float | None = None,
    gop_frames: int = 10,
    seconds: float | None = None,
) -> tuple[Path, Path]:
    """Encode src_video as a camera does: a main stream (record role, main_width_px wide)
    and a substream (detect role, sub_width_px wide) from the same frames with the same
    timestamps; H.264 (libx264) yuv420p MP4s with a keyframe every gop_frames frames and no
    B-frames; at fps (default: the source's rate), for at most `seconds`.
    Returns (main, sub): OUT_DIR/<stem>-main.mp4 and OUT_DIR/<stem>-sub.mp4.
    Served with loop=True, the GOP cadence holds across the file's end only when the frame
    count (seconds x fps) is a multiple of gop_frames; else the last GOP is shorter."""
    if gop_frames < 1:
        raise ValueError(f"gop_frames={gop_frames}: expected at least 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / f"{src_video.stem}-main.mp4", out_dir / f"{src_video.stem}-sub.mp4")
    with ExitStack() as stack:
        src = stack.enter_context(av.open(str(src_video)))
        if not src.streams.video:
            raise ValueError(f"{src_video}: no video stream")
        in_stream = src.streams.video[0]
        src_rate = in_stream.average_rate or in_stream.guessed_rate or Fraction(25)
        rate = Fraction(fps).limit_denominator(1001) if fps else Fraction(src_rate)
        sizes = [
            _even_size(in_stream.width, in_stream.height, w) for w in (main_width_px, sub_width_px)
        ]
        outs = [stack.enter_context(av.open(str(p), "w", format="mp4")) for p in paths]
        streams = [_h264_stream(o, rate, wh, gop_frames) for o, wh in zip(outs, sizes, strict=True)]
        n = 0
        for frame in _resampled(src.decode(in_stream), Fraction(src_rate), rate, seconds):
            for out, stream, (w, h) in zip(outs, streams, sizes, strict=True):
                scaled = frame.reformat(width=w, height=h, format="yuv420p", interpolation="AREA")
                scaled.pts = n
                scaled.time_base = 1 / rate  # the muxer changes stream.time_base at its header
                # The source's frame types would force x264's: only the fixed GOP decides.
                scaled.pict_type = PictureType.NONE
                out.mux(stream.encode(scaled))
            n += 1
        if n == 0:
            raise ValueError(f"{src_video}: no frames decoded")
        for out, stream in zip(outs, streams, strict=True):
            out.mux(stream.encode(None))
    return paths


# --- the RTSP server ------------------------------------------------------------------------


class RtspServer:
    """tests/rtsp_serve.py in a child process: mounts name -> MP4 file at
    rtsp://127.0.0.1:PORT/NAME, looped by default (a camera never ends). start() and stop()
    may alternate (a camera going offline and back) and keep the port; the context manager
    starts it and stops it, and removes its log folder unless log_path was given."""

    def __init__(
        self,
        mounts: Mapping[str, Path],
        *,
        loop: bool = True,
        port: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        if not mounts:
            raise ValueError("RtspServer: no mounts")
        for name, path in mounts.items():
            if not Path(path).is_file():
                raise FileNotFoundError(f"RtspServer mount {name!r}: no file {path}")
        self.mounts = {name: Path(path) for name, path in mounts.items()}
        self.loop = loop
        self._port_fixed = port is not None
        self.port = port if port is not None else free_port()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if log_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rtsp-serve-")
            log_path = Path(self._tmp.name) / "rtsp_serve.log"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, name: str) -> str:
        if name not in self.mounts:
            raise KeyError(f"RtspServer: no mount {name!r} (mounts: {sorted(self.mounts)})")
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        """Start the server and return once its port accepts connections; on the same port
        as before if it ran already (clients reconnect to the same URLs)."""
        if self.running:
            raise RuntimeError(f"RtspServer on port {self.port} is already running")
        first_start = self.proc is None and not self._port_fixed
        for attempt in range(START_ATTEMPTS if first_start else 1):
            if attempt:
                self.port = free_port()
            code = self._spawn_and_wait()
            if code is None:
                return
            if code != EXIT_PORT_BUSY:
                break
        self._raise_exited(code)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE_S: connected clients see their connection
        close. Does nothing when not running."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_GRACE_S)

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RtspServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _command(self) -> list[str]:
        args = [str(SYSTEM_PYTHON), str(SERVE_SCRIPT), "--port", str(self.port)]
        for name, path in self.mounts.items():
            args += ["--mount", f"{name}={path}"]
        return [*args, "--loop"] if self.loop else args

    def _spawn_and_wait(self) -> int | None:
        """Start the child and wait until it listens: None, or its exit code if it ended."""
        if not SYSTEM_PYTHON.is_file():
            raise RuntimeError(
                f"{SYSTEM_PYTHON} not found: the RTSP test server needs Debian's python3 with "
                f"these packages: apt-get install {DEBIAN_PACKAGES}"
            )
        with self.log_path.open("ab") as log:
            # Debian's python3 must not see the .venv's packages: only gi is needed there.
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
            self.proc = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                return code
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return None
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"RTSP test server did not listen on 127.0.0.1:{self.port} within "
            f"{READY_TIMEOUT_S:.0f} s; its log ({self.log_path}):\n{self.log_text()[-3000:]}"
        )

    def _raise_exited(self, code: int | None) -> None:
        log = self.log_text()[-3000:]
        if code == EXIT_NO_GI:
            raise RuntimeError(
                f"{SYSTEM_PYTHON} cannot load GStreamer's RTSP server through gi; install the "
                f"Debian packages (scripts/setup.sh does): apt-get install {DEBIAN_PACKAGES}\n{log}"
            )
        raise RuntimeError(
            f"RTSP test server (port {self.port}) exited with code {code}; its log "
            f"({self.log_path}):\n{log}"
        )
