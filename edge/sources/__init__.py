"""Frame sources: files, images, streams and cameras behind one interface."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from contract.config.camera import ReconnectConfig, SourceConfig
from edge.errors import SourceError
from edge.sources.base import Frame, FrameSource, SourceState
from edge.sources.image import IMAGE_SUFFIXES, ImageSource
from edge.sources.live import LiveSource, StateCallback
from edge.sources.packets import PacketRing
from edge.sources.pyav import PyAvSource, ReadOptions

__all__ = ["Frame", "FrameSource", "SourceState", "is_live", "open_source", "source_kind"]

_STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")

SourceKind = Literal["file", "image", "stream", "device"]


def source_kind(spec: SourceConfig | str) -> SourceKind:
    """What a source is: the config's ``kind``, or for "auto" what its URI looks like.

    The one place that decides "file or live?": opening a source and everything that treats
    files and live sources differently (a file ends, a stream is reconnected) ask here.
    """
    cfg = spec if isinstance(spec, SourceConfig) else SourceConfig(uri=spec)
    if cfg.kind != "auto":
        return cfg.kind
    uri = cfg.uri
    if uri.lower().startswith(_STREAM_SCHEMES):
        return "stream"
    if uri.isdigit():
        return "device"
    if Path(uri).suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    return "file"


def is_live(spec: SourceConfig | str) -> bool:
    """A stream or a camera: frames carry wall-clock time and it never ends on its own."""
    return source_kind(spec) in ("stream", "device")


def open_source(
    spec: SourceConfig | str,
    *,
    realtime: bool = True,
    base_dir: Path | None = None,
    on_state: StateCallback | None = None,
    epoch_s: float = 0.0,
    packets: PacketRing | None = None,
    want: Callable[[float], bool] | None = None,
    decode: bool = True,
) -> FrameSource:
    """Open whatever the URI names: an image, a video file, a stream or a device index.

    ``epoch_s`` is added to a file's media timestamps (live sources use wall-clock time).
    Files and streams are read by PyAV, which can also keep their compressed ``packets``
    (for clips cut by remuxing), convert only the frames ``want`` asks for, or not
    ``decode`` at all (a record-only input); images and local devices go through OpenCV.
    """
    cfg = spec if isinstance(spec, SourceConfig) else SourceConfig(uri=spec)
    kind = source_kind(cfg)
    reconnect = cfg.reconnect or ReconnectConfig()
    if kind == "device":
        return LiveSource(cfg.uri, reconnect, on_state=on_state)
    if kind == "stream":
        options = ReadOptions(live=True, reconnect=reconnect, decode=decode)
        return PyAvSource(cfg.uri, options, packets=packets, want=want, on_state=on_state)
    path = Path(cfg.uri).expanduser()
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    if kind == "image":
        return ImageSource(path)
    check_file(path)
    options = ReadOptions(
        live=False,
        reconnect=reconnect,
        realtime=realtime,
        loop=cfg.loop,
        epoch_s=epoch_s,
        start_s=cfg.start_s,
        decode=decode,
    )
    return PyAvSource(str(path), options, packets=packets, want=want, on_state=on_state)


def check_file(path: Path) -> None:
    if not path.exists():
        raise SourceError(f"{path}: video file not found")
    if not path.is_file():
        raise SourceError(f"{path}: not a file")
