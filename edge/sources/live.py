"""Live sources (RTSP/HTTP streams, local cameras) that reconnect with exponential backoff."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from contract.config.camera import ReconnectConfig
from edge.errors import SourceError
from edge.sources.base import Frame, FrameSource, SourceState

log = logging.getLogger(__name__)

StateCallback = Callable[[SourceState, str], None]
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def redact(uri: str) -> str:
    """Drop user:password from a URL before it reaches a log or an error message."""
    return _CREDENTIALS.sub("***@", uri)


class LiveSource(FrameSource):
    """Reads until the stream drops, then reopens it: forever, or up to ``max_attempts``.

    Frames carry capture wall-clock time, since a stream's own timestamps restart on
    every reconnect.
    """

    def __init__(
        self,
        uri: str,
        reconnect: ReconnectConfig,
        *,
        on_state: StateCallback | None = None,
        nominal_fps: float = 25.0,
    ) -> None:
        self.uri = uri
        self.reconnect = reconnect
        self._on_state = on_state
        self._fps = nominal_fps
        self._stop = threading.Event()
        self._cap: cv2.VideoCapture | None = None
        self.reconnects = 0

    @property
    def fps(self) -> float:
        return self._fps

    def stop(self) -> None:
        """Ask ``frames()`` to return at the next frame or backoff wait."""
        self._stop.set()

    def _set_state(self, state: SourceState, detail: str) -> None:
        self.state = state
        log.info("source %s: %s %s", redact(self.uri), state.value, detail)
        if self._on_state:
            self._on_state(state, detail)

    def _open(self) -> cv2.VideoCapture:
        timeout_ms = int(self.reconnect.read_timeout_s * 1000)
        if self.uri.isdigit():
            return cv2.VideoCapture(int(self.uri))
        return cv2.VideoCapture(
            self.uri,
            cv2.CAP_FFMPEG,
            [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                timeout_ms,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                timeout_ms,
            ],
        )

    def frames(self) -> Iterator[Frame]:
        failures = 0
        delay_s = self.reconnect.initial_delay_s
        index = 0
        self._set_state(SourceState.CONNECTING, "")
        while not self._stop.is_set():
            cap = self._open()
            self._cap = cap
            got_frame = False
            if cap.isOpened():
                fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
                if 0 < fps < 1000:
                    self._fps = fps
                while not self._stop.is_set():
                    ok, image = cap.read()
                    if not ok or image is None:
                        break
                    if not got_frame:
                        got_frame = True
                        failures = 0
                        delay_s = self.reconnect.initial_delay_s
                        self._set_state(SourceState.STREAMING, f"{image.shape[1]}x{image.shape[0]}")
                    yield Frame(
                        image_bgr=np.asarray(image, dtype=np.uint8), ts_s=time.time(), index=index
                    )
                    index += 1
            cap.release()
            self._cap = None
            if self._stop.is_set():
                break
            if not got_frame:
                failures += 1
            limit = self.reconnect.max_attempts
            if limit is not None and failures >= limit:
                self._set_state(SourceState.FAILED, f"after {failures} attempts")
                raise SourceError(
                    f"{redact(self.uri)}: stream unreachable or not delivering frames "
                    f"after {failures} attempts"
                )
            self.reconnects += 1
            what = "dropped" if got_frame else "unreachable"
            self._set_state(SourceState.RECONNECTING, f"{what}; retry in {delay_s:.1f}s")
            if self._stop.wait(delay_s):
                break
            delay_s = min(delay_s * 2, self.reconnect.max_delay_s)
        self._set_state(SourceState.ENDED, "stopped")

    def close(self) -> None:
        self.stop()
        if self._cap is not None:
            self._cap.release()
