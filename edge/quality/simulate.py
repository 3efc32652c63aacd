"""Tampering and the harmless changes a street camera sees, applied to real frames.

Pure functions of a BGR frame (and a seeded generator where there is chance), for tests
and scenario videos: what a monitor must flag (a cover, a turn, defocus, a frozen picture,
severe noise, glare) and what it must not (dusk, lights switching on, the switch to infrared
night mode, shake, weather, compression). Each returns a new frame of the input's size and
never changes its input. Parameters are in frame pixels or as shares of the frame, so the
same call suits any resolution. Time-varying tampers (a blur that grows, dusk that falls)
take their strength as an argument; ``ramp`` turns a time into one.

    view = pan_view(frame, start_x=0.0, width=0.7)   # the camera's view before turning
    turned = pan_view(frame, start_x=0.25, width=0.7)
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from fractions import Fraction

import av
import cv2
import numpy as np
import numpy.typing as npt

ImageBGR = npt.NDArray[np.uint8]


def ramp(ts_s: float, start_s: float, duration_s: float) -> float:
    """0 before ``start_s``, rising linearly to 1 at ``start_s + duration_s``, then 1."""
    if duration_s <= 0:
        return 1.0 if ts_s >= start_s else 0.0
    return float(np.clip((ts_s - start_s) / duration_s, 0.0, 1.0))


def _clip_u8(image: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> ImageBGR:
    return np.asarray(np.clip(image, 0, 255), np.uint8)


def sensor_noise(frame: ImageBGR, sigma: float, rng: np.random.Generator) -> ImageBGR:
    """Gaussian noise of ``sigma`` grey levels on every pixel and channel."""
    noise = rng.normal(0.0, sigma, frame.shape).astype(np.float32)
    return _clip_u8(frame.astype(np.float32) + noise)


def black_cover(frame: ImageBGR, rng: np.random.Generator) -> ImageBGR:
    """Tape or a cap over the lens: black but for a little sensor noise (a sensor is never
    bit-exact black)."""
    return sensor_noise(np.full_like(frame, 4), 2.0, rng)


def hand_cover(frame: ImageBGR, rng: np.random.Generator, colour_bgr: tuple[int, int, int] = (
    90, 120, 170)) -> ImageBGR:  # fmt: skip
    """A hand or cloth right in front of the lens: out of focus, so a smooth field of one
    colour; dim, as it blocks most of the light and faces the lens with its shaded side,
    but lit unevenly (brighter where light leaks past it at one edge); with sensor noise.
    The leak's side and the shading are random, so nothing lines up with the scene."""
    h, w = frame.shape[:2]
    field = cv2.resize(rng.random((3, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    field = cv2.GaussianBlur(field, (0, 0), w / 8)
    side = rng.integers(4)
    leak = np.linspace(1.0, 0.0, w if side < 2 else h, dtype=np.float32) ** 2
    leak = leak[::-1] if side % 2 else leak
    leak_2d = np.tile(leak, (h, 1)) if side < 2 else np.tile(leak[:, None], (1, w))
    light = 0.12 + 0.2 * field + 0.45 * leak_2d
    covered = light[:, :, None] * np.asarray(colour_bgr, np.float32)[None, None, :]
    return sensor_noise(_clip_u8(covered), 2.0, rng)


def pan_view(frame: ImageBGR, start_x: float, width: float = 0.7) -> ImageBGR:
    """The camera's view as a window of ``width`` (share of the frame width) starting at
    ``start_x`` (share), the full height, scaled back to the frame's size. Moving
    ``start_x`` between two calls turns the camera: the scale stays, the view pans."""
    h, w = frame.shape[:2]
    if not start_x >= 0 and start_x + width <= 1.0 + 1e-9:
        raise ValueError(f"pan_view: window {start_x}+{width} leaves the frame")
    x0 = round(start_x * w)
    window = frame[:, x0 : x0 + round(width * w)]
    return np.ascontiguousarray(cv2.resize(window, (w, h), interpolation=cv2.INTER_LINEAR))


def defocus(frame: ImageBGR, sigma_px: float) -> ImageBGR:
    """A lens out of focus: a Gaussian blur of ``sigma_px`` (0: the frame as it is)."""
    if sigma_px <= 0:
        return frame.copy()
    return np.asarray(cv2.GaussianBlur(frame, (0, 0), sigma_px), np.uint8)


def glare(
    frame: ImageBGR, centre_xy: tuple[float, float], radius: float, strength: float = 1.0
) -> ImageBGR:
    """Sun or a headlight in the lens: a bloom of light around ``centre_xy`` (shares of the
    frame) that saturates a disc of about ``radius`` (share of the width) and washes out
    the picture around it (the veil of scattered light lowers contrast)."""
    h, w = frame.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xs - centre_xy[0] * w) ** 2 + (ys - centre_xy[1] * h) ** 2) / (radius * w) ** 2
    bloom = strength * (np.exp(-r2 / 2.0) * 1.6 + 0.25 / (1.0 + r2))  # core, then a long veil
    lit = frame.astype(np.float32) * (1.0 - 0.5 * np.minimum(bloom, 1.0))[:, :, None]
    return _clip_u8(lit + 255.0 * bloom[:, :, None])


def gain(frame: ImageBGR, factor: float) -> ImageBGR:
    """Exposure scaled by ``factor``: dusk falling (below 1), lights switching on (above)."""
    return np.asarray(cv2.convertScaleAbs(frame, alpha=factor), np.uint8)


def infrared_grey(frame: ImageBGR, gamma: float = 0.6) -> ImageBGR:
    """The switch to infrared night mode: colour gone, and a different tone curve (the
    sensor without its IR-cut filter renders materials lighter or darker than by day)."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    toned = 255.0 * (0.1 + 0.85 * grey**gamma)
    return np.asarray(cv2.cvtColor(_clip_u8(toned), cv2.COLOR_GRAY2BGR), np.uint8)


def shake(frame: ImageBGR, dx_px: float, dy_px: float) -> ImageBGR:
    """The camera moved by (dx_px, dy_px) on its pole; edges filled by reflection."""
    matrix = np.array([[1, 0, dx_px], [0, 1, dy_px]], np.float32)
    h, w = frame.shape[:2]
    moved = cv2.warpAffine(frame, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    return np.asarray(moved, np.uint8)


def weather(frame: ImageBGR, kind: str, rng: np.random.Generator) -> ImageBGR:
    """Snow (bright flakes of 1-3 px) or rain (light streaks slanting down) over the frame,
    a few hundred a frame at random places, on sensor noise of 3 grey levels."""
    h, w = frame.shape[:2]
    out = frame.copy()
    count = int(h * w / 800)
    xs, ys = rng.integers(0, w, count), rng.integers(0, h, count)
    shade = rng.integers(170, 256, count)
    if kind == "snow":
        sizes = rng.integers(1, 4, count)
        for x, y, r, s in zip(
            xs.tolist(), ys.tolist(), sizes.tolist(), shade.tolist(), strict=True
        ):
            cv2.circle(out, (x, y), r, (s, s, s), -1, cv2.LINE_AA)
    elif kind == "rain":
        lengths = rng.integers(h // 40, h // 12, count)
        for x, y, n, s in zip(
            xs.tolist(), ys.tolist(), lengths.tolist(), shade.tolist(), strict=True
        ):
            cv2.line(out, (x, y), (x + n // 4, y + n), (s, s, s), 1, cv2.LINE_AA)
        out = np.asarray(cv2.addWeighted(out, 0.6, frame, 0.4, 0), np.uint8)
    else:
        raise ValueError(f"weather: unknown kind {kind!r} (snow or rain)")
    return sensor_noise(out, 3.0, rng)


def h264(frames: Iterable[ImageBGR], fps: float, crf: int = 35) -> Iterator[ImageBGR]:
    """The frames through an H.264 encoder (libx264, ``crf``: 35 is a starved stream, with
    the blocking and smeared detail of a cheap camera's substream) and back."""
    buffer = io.BytesIO()
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(buffer, "w", format="mp4") as container:
        stream: av.VideoStream | None = None
        for image in frames:
            if stream is None:
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = image.shape[1], image.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": "veryfast"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    buffer.seek(0)
    with av.open(buffer, "r") as container:
        for decoded in container.decode(video=0):
            yield np.asarray(decoded.to_ndarray(format="bgr24"), np.uint8)
