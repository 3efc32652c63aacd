"""Sources: files with media timestamps, clear errors for bad files, live reconnects."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from contract.config.camera import ReconnectConfig, SourceConfig
from edge.errors import SourceError
from edge.sources import SourceState, is_live, open_source, source_kind
from edge.sources.live import redact
from edge.sources.pyav import PyAvSource
from tests.deploy import free_port


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("rtsp://user:pw@cam.local/live", "stream"),
        ("HTTPS://example.org/cam.mjpg", "stream"),
        ("0", "device"),
        ("street.JPG", "image"),
        ("clips/parking.mp4", "file"),
        (SourceConfig(uri="cam-7", kind="stream"), "stream"),
        (SourceConfig(uri="rtsp://x/y", kind="file"), "file"),
    ],
)
def test_one_function_says_file_or_live(spec: SourceConfig | str, kind: str) -> None:
    assert source_kind(spec) == kind
    assert is_live(spec) == (kind in ("stream", "device"))


def test_video_frames_carry_media_time(video_path: Callable[[str], Path]) -> None:
    with open_source(str(video_path("car-detection.mp4")), realtime=False) as src:
        assert src.fps == pytest.approx(12.5)
        assert src.frame_count == 377
        ts = [f.ts_s for f in src.frames()]
    assert len(ts) == 377
    assert ts[0] == 0.0
    assert ts[-1] == pytest.approx(376 / 12.5)


def test_gif_is_a_video(video_path: Callable[[str], Path]) -> None:
    with open_source(str(video_path("people-detection.gif")), realtime=False) as src:
        assert sum(1 for _ in src.frames()) == 23


def test_realtime_pacing_follows_file_fps(video_path: Callable[[str], Path]) -> None:
    import time

    with open_source(str(video_path("people-detection.gif")), realtime=True) as src:
        t0 = time.monotonic()
        n = sum(1 for _ in src.frames())
        elapsed = time.monotonic() - t0
    assert elapsed >= (n - 1) / 12.5 * 0.95


def test_image_is_one_frame(image_path: Callable[[str], Path]) -> None:
    frames = list(open_source(str(image_path("000000001000.jpg"))).frames())
    assert len(frames) == 1
    assert frames[0].wh == (640, 480)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nothing\.mp4: video file not found"):
        open_source(str(tmp_path / "nothing.mp4"))


def test_text_renamed_mp4(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 50)
    with pytest.raises(SourceError, match=r"notes\.mp4: cannot open as video"):
        open_source(str(fake))


@pytest.mark.parametrize("name", ["car-detection.mp4", "bottle-detection.mp4"])
def test_truncated_video_is_an_error(
    tmp_path: Path, video_path: Callable[[str], Path], name: str
) -> None:
    """Index-first files decode then stop short; index-last files cannot be opened at all."""
    data = video_path(name).read_bytes()
    cut = tmp_path / f"cut-{name}"
    cut.write_bytes(data[: len(data) // 2])
    with (
        pytest.raises(
            SourceError,
            match=r"cut-.*\.mp4: (video ends after \d+ of \d+ frames|cannot open as video)",
        ),
        open_source(str(cut), realtime=False) as src,
    ):
        for _ in src.frames():
            pass


def test_unreachable_rtsp_retries_with_backoff_then_reports() -> None:
    states: list[tuple[SourceState, str]] = []
    src = open_source(
        SourceConfig(
            uri=f"rtsp://user:secret@127.0.0.1:{free_port()}/stream",
            reconnect=ReconnectConfig(
                initial_delay_s=0.05, max_delay_s=0.2, max_attempts=3, read_timeout_s=2
            ),
        ),
        on_state=lambda s, d: states.append((s, d)),
    )
    assert isinstance(src, PyAvSource)
    with pytest.raises(
        SourceError,
        match=r"rtsp://\*\*\*@127\.0\.0\.1:\d+/stream: stream unreachable .* after 3 attempts",
    ) as info:
        list(src.frames())
    assert "secret" not in str(info.value)
    retries = [d for s, d in states if s is SourceState.RECONNECTING]
    assert [r.split("retry in ")[1] for r in retries] == ["0.1s", "0.1s"]  # 0.05 then 0.10
    assert states[-1][0] is SourceState.FAILED


@pytest.fixture
def http_server(
    tmp_path: Path, video_path: Callable[[str], Path]
) -> Iterator[tuple[str, http.server.ThreadingHTTPServer]]:
    shutil.copy(video_path("people-detection.gif"), tmp_path / "cam.gif")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cam.gif", server
    server.shutdown()
    server.server_close()


def test_http_stream_that_drops_is_reopened_and_stops_when_gone(
    http_server: tuple[str, http.server.ThreadingHTTPServer],
) -> None:
    url, server = http_server
    states: list[SourceState] = []
    src = open_source(
        SourceConfig(
            uri=url,
            reconnect=ReconnectConfig(initial_delay_s=0.05, max_attempts=2, read_timeout_s=2),
        ),
        on_state=lambda s, d: states.append(s),
    )
    assert isinstance(src, PyAvSource)
    frames = 0

    def consume() -> None:
        nonlocal frames
        for frame in src.frames():
            frames += 1
            assert frame.ts_s > 1e9  # wall clock for live sources
            if frames == 23 * 2:  # the 'stream' ended once and was reopened: now lose it
                server.shutdown()
                server.server_close()

    with pytest.raises(SourceError, match="after 2 attempts"):
        consume()
    assert frames >= 23 * 2
    assert src.reconnects >= 2
    assert states.count(SourceState.STREAMING) >= 2


def test_redact_hides_credentials() -> None:
    assert redact("rtsp://admin:pw@10.0.0.5/s") == "rtsp://***@10.0.0.5/s"
    assert redact("/videos/a.mp4") == "/videos/a.mp4"


def test_start_s_begins_at_the_keyframe_before(video_path: Callable[[str], Path]) -> None:
    """A file camera can start part-way (soak tests: copies of a clip not in step); its
    time still starts at the epoch, and the first frame is the keyframe's picture."""
    video = video_path("one-by-one-person-detection.mp4")  # a keyframe every second
    src = open_source(SourceConfig(uri=str(video), start_s=12.5), realtime=False, epoch_s=100.0)
    frames = list(src.frames())
    assert frames[0].ts_s == pytest.approx(100.0)
    assert len(frames) == 1394 - 120  # from the keyframe at 12 s: 13.9 s left at 10 fps
