"""An RTSP camera for the tests: GStreamer's RTSP server playing H.264 MP4 files in real
time, one mount per file, without re-encoding, on 127.0.0.1 only.

    /usr/bin/python3 tests/rtsp_serve.py --port 8554 --mount main=a.mp4 --mount sub=b.mp4 --loop

Run by Debian's python3 (the one with python3-gi and gir1.2-gst-rtsp-server-1.0); no project
imports. Each file is demuxed once at start into memory (its H.264 access units); a client's
media is `appsrc ! h264parse ! rtph264pay` fed from that list, so the SDP carries
sprop-parameter-sets from the MP4's avcC and every IDR access unit is preceded by SPS/PPS in
band (h264parse config-interval=-1). B-frames keep their decode times. With
--loop the list plays again and again with timestamps that keep increasing (each pass is
shifted by the file's duration), like a camera that never ends; the sinks of the RTSP server
pace the packets by the pipeline's clock. Media is shared: clients of one mount see one
stream. Exit codes: 2 bad arguments or file, 3 gi/GStreamer missing, 4 cannot listen.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2
EXIT_NO_GI = 3
EXIT_PORT_BUSY = 4
LOAD_TIMEOUT_S = 30.0

try:
    import gi  # Debian's python3-gi, no stubs

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer
except (ImportError, ValueError) as exc:  # ValueError: a typelib of that version is missing
    print(f"rtsp_serve: cannot load GStreamer through gi: {exc}", file=sys.stderr, flush=True)
    sys.exit(EXIT_NO_GI)


def log(message: str) -> None:
    print(f"rtsp_serve: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class AccessUnit:
    data: bytes
    pts_ns: int  # from the file's first frame (plus the B-frame delay, if any)
    dts_ns: int
    duration_ns: int
    keyframe: bool


@dataclass(frozen=True)
class Clip:
    path: Path
    caps: Any  # Gst.Caps: video/x-h264, avc, with codec_data (the avcC)
    units: tuple[AccessUnit, ...]
    period_ns: int  # how far each loop shifts the timestamps: the clip's duration


def load_clip(path: Path) -> Clip:
    """The H.264 access units of an MP4's first video track, in decode order."""
    pipeline = Gst.parse_launch(
        "filesrc name=src ! qtdemux name=demux demux.video_0 ! h264parse ! "
        "video/x-h264,stream-format=avc,alignment=au ! appsink name=sink sync=false"
    )
    pipeline.get_by_name("src").set_property("location", str(path))
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    caps = None
    raw: list[tuple[bytes, int, int, int, bool]] = []
    deadline_s = time.monotonic() + LOAD_TIMEOUT_S
    try:
        while True:
            # A bounded wait, not pull-sample: on a demuxer error no sample and no EOS come.
            sample = sink.emit("try-pull-sample", 100 * Gst.MSECOND)
            if sample is None:
                error = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
                if error is not None:
                    err, debug = error.parse_error()
                    raise ValueError(f"{path}: cannot read H.264 from it: {err.message} ({debug})")
                if sink.get_property("eos"):
                    break
                if time.monotonic() > deadline_s:
                    raise ValueError(f"{path}: not read within {LOAD_TIMEOUT_S:.0f} s")
                continue
            buf = sample.get_buffer()
            caps = caps or sample.get_caps()
            pts = buf.pts if buf.pts != Gst.CLOCK_TIME_NONE else buf.dts
            dts = buf.dts if buf.dts != Gst.CLOCK_TIME_NONE else pts
            keyframe = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
            data = buf.extract_dup(0, buf.get_size())
            raw.append((data, pts, dts, buf.duration, keyframe))
    finally:
        pipeline.set_state(Gst.State.NULL)
    if not raw or caps is None:
        raise ValueError(f"{path}: no H.264 video frames in it")
    first_pts_ns = min(r[1] for r in raw)
    # With B-frames the first decode times come before the first presentation time: shift
    # all by that delay, as timestamps cannot go below 0.
    delay_ns = max(0, first_pts_ns - min(r[2] for r in raw))
    span_ns = max(r[1] for r in raw) - first_pts_ns
    fallback_ns = span_ns // (len(raw) - 1) if len(raw) > 1 else 10**8
    units = tuple(
        AccessUnit(
            data,
            pts - first_pts_ns + delay_ns,
            dts - first_pts_ns + delay_ns,
            dur if dur != Gst.CLOCK_TIME_NONE else fallback_ns,
            key,
        )
        for data, pts, dts, dur, key in raw
    )
    period_ns = max(u.pts_ns + u.duration_ns for u in units) - delay_ns
    return Clip(path, caps, units, period_ns)


class Feeder:
    """Pushes one clip into one media's appsrc when it asks for data, looping or not."""

    def __init__(self, clip: Clip, loop: bool, mount: str) -> None:
        self.clip = clip
        self.loop = loop
        self.mount = mount
        self.index = 0
        self.passes = 0

    def need_data(self, src: Any, _length: int) -> None:
        if self.index == len(self.clip.units):
            if not self.loop:
                log(f"/{self.mount}: end of {self.clip.path.name}")
                src.emit("end-of-stream")
                return
            self.index = 0
            self.passes += 1
        unit = self.clip.units[self.index]
        self.index += 1
        buf = Gst.Buffer.new_wrapped(unit.data)
        shift_ns = self.passes * self.clip.period_ns
        buf.pts = shift_ns + unit.pts_ns
        buf.dts = shift_ns + unit.dts_ns
        buf.duration = unit.duration_ns
        if not unit.keyframe:
            buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
        src.emit("push-buffer", buf)


def make_factory(mount: str, clip: Clip, loop: bool) -> Any:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        # h264parse, not the payloader, repeats SPS/PPS before each IDR: it does so once per
        # access unit, the payloader before every IDR slice (which splits multi-slice
        # frames in FFmpeg's parser).
        "( appsrc name=src format=time max-buffers=30 ! h264parse config-interval=-1 ! "
        "rtph264pay name=pay0 pt=96 config-interval=0 )"
    )
    factory.set_shared(True)

    def configure(_factory: Any, media: Any) -> None:
        src = media.get_element().get_by_name("src")
        src.set_property("caps", clip.caps)
        src.connect("need-data", Feeder(clip, loop, mount).need_data)
        log(f"/{mount}: new media for {clip.path.name}")

    factory.connect("media-configure", configure)
    return factory


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--mount", action="append", required=True, metavar="NAME=FILE", help="repeatable"
    )
    parser.add_argument("--loop", action="store_true", help="play each file again and again")
    return parser.parse_args(argv)


def parse_mounts(specs: list[str]) -> dict[str, Path]:
    mounts: dict[str, Path] = {}
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep or not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"--mount {spec!r}: expected NAME=FILE, NAME of [A-Za-z0-9_-]")
        if name in mounts:
            raise ValueError(f"--mount {spec!r}: mount {name!r} given twice")
        if not Path(file).is_file():
            raise ValueError(f"--mount {spec!r}: no file {file}")
        mounts[name] = Path(file)
    return mounts


#: The elements of the loader and media pipelines, and the Debian package of each.
ELEMENTS = {
    "filesrc": "gstreamer1.0 (core)",
    "qtdemux": "gstreamer1.0-plugins-good",
    "h264parse": "gstreamer1.0-plugins-bad",
    "appsink": "gstreamer1.0-plugins-base",
    "appsrc": "gstreamer1.0-plugins-base",
    "rtph264pay": "gstreamer1.0-plugins-good",
}


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    Gst.init(None)
    missing = [f"{e} ({pkg})" for e, pkg in ELEMENTS.items() if Gst.ElementFactory.find(e) is None]
    if missing:
        log(f"GStreamer elements missing: {', '.join(missing)}")
        return EXIT_NO_GI
    try:
        clips = {name: load_clip(path) for name, path in parse_mounts(args.mount).items()}
    except ValueError as exc:
        log(str(exc))
        return EXIT_BAD_INPUT
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for name, clip in clips.items():
        mounts.add_factory(f"/{name}", make_factory(name, clip, args.loop))
        log(
            f"/{name}: {clip.path} ({len(clip.units)} frames, {clip.period_ns / 1e9:.2f} s"
            f"{', looped' if args.loop else ''})"
        )
    if server.attach(None) == 0:
        log(f"cannot listen on 127.0.0.1:{args.port} (in use?)")
        return EXIT_PORT_BUSY
    server.connect("client-connected", lambda _s, _c: log("client connected"))
    main_loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, _quit, main_loop, signum)
    log(f"listening on rtsp://127.0.0.1:{args.port}/")
    main_loop.run()
    return 0


def _quit(main_loop: Any, signum: int) -> bool:
    log(f"signal {signal.Signals(signum).name}: stopping")
    main_loop.quit()
    return False  # GLib.SOURCE_REMOVE: this handler is done


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
