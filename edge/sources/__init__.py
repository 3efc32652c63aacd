"""Frame sources: files, images, streams and cameras behind one interface."""

from __future__ import annotations

from pathlib import Path

from edge.config.camera import ReconnectConfig, SourceConfig
from edge.sources.base import Frame, FrameSource, SourceState
from edge.sources.image import IMAGE_SUFFIXES, ImageSource
from edge.sources.live import LiveSource, StateCallback
from edge.sources.video import VideoFileSource

__all__ = ["Frame", "FrameSource", "SourceState", "open_source"]

_STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


def open_source(
    spec: SourceConfig | str,
    *,
    realtime: bool = True,
    base_dir: Path | None = None,
    on_state: StateCallback | None = None,
    epoch_s: float = 0.0,
) -> FrameSource:
    """Open whatever the URI names: an image, a video file, a stream or a device index.

    ``epoch_s`` is added to a file's media timestamps (live sources use wall-clock time).
    """
    cfg = spec if isinstance(spec, SourceConfig) else SourceConfig(uri=spec)
    uri, kind = cfg.uri, cfg.kind
    if kind == "auto":
        if uri.lower().startswith(_STREAM_SCHEMES):
            kind = "stream"
        elif uri.isdigit():
            kind = "device"
        elif Path(uri).suffix.lower() in IMAGE_SUFFIXES:
            kind = "image"
        else:
            kind = "file"
    if kind in ("stream", "device"):
        return LiveSource(uri, cfg.reconnect or ReconnectConfig(), on_state=on_state)
    path = Path(uri).expanduser()
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    if kind == "image":
        return ImageSource(path)
    return VideoFileSource(path, realtime=realtime, loop=cfg.loop, epoch_s=epoch_s)
