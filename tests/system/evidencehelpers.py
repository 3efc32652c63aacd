"""An edge's evidence queue for the system tests: real JPEG files in its outbox, and what
its uploader reports there."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.delivery.outbox import Outbox
from edge.delivery.uploader import STATUS_KEY
from edge.evidence.media import MediaItem

N_FILES = 3


def queue_snapshots(outbox_path: Path, folder: Path) -> dict[str, str]:
    """N_FILES distinct JPEG snapshots queued for upload: media id -> sha256."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    box = Outbox(outbox_path)
    hashes = {}
    for i in range(N_FILES):
        mid = str(uuid.uuid4())
        path = folder / f"{mid}.jpg"
        ok, jpeg = cv2.imencode(".jpg", rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
        assert ok
        path.write_bytes(jpeg.tobytes())
        hashes[mid] = hashlib.sha256(path.read_bytes()).hexdigest()
        box.put_media(
            MediaItem(
                mid,
                str(uuid.uuid4()),
                "snapshot",
                path,
                hashes[mid],
                path.stat().st_size,
                "image/jpeg",
                float(i),
                0.0,
            )
        )
    box.close()
    return hashes


def outbox_state(path: Path) -> tuple[int, int, dict[str, object]]:
    """Files waiting, files dead-lettered, and the uploader's last status."""
    box = Outbox(path)
    try:
        status = json.loads(box.meta().get(STATUS_KEY, "{}"))
        return box.media_depth(), box.dead_media_count(), status
    finally:
        box.close()


def wait(what: str, condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


#: Loads a <video> from a same-origin URL in the page and waits until it can play.
_PLAY_JS = """async (src) => {
    const v = document.createElement('video');
    v.muted = true; v.preload = 'auto'; v.src = src;
    document.body.appendChild(v);
    await new Promise((ok, fail) => {
        v.oncanplay = ok; v.onerror = () => fail(new Error('error ' + v.error.code));
        setTimeout(() => fail(new Error('timeout, readyState ' + v.readyState)), 15000);
    });
    return [v.readyState, v.duration];
}"""


def video_state(page: Any, src: str) -> tuple[float, float]:
    """readyState and duration of src played in a real browser page (a Playwright Page);
    fails after 15 s or on a media error."""
    state = page.evaluate(_PLAY_JS, src)
    return float(state[0]), float(state[1])
