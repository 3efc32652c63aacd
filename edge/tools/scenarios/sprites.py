"""Pixels for the scenes: shared photos and video frames, cut-outs with a soft alpha, objects
drawn by the generator, and pasting one onto a frame.

Cut-outs keep a little of their own background (a feathered rectangle or an ellipse rather
than an exact silhouette): YOLOX-Nano finds a car or a person cut that way as surely as in
the original photo, while an exact GrabCut silhouette loses it more often (measured on the
shared photos: a car at 0.8x is found at 0.86 as a rectangle, not at all as a silhouette).
Drawn objects exist for what the photos lack: a market parasol (detected as ``umbrella``)
for street vending, and compact things (a box, a bin bag) for class-free litter evidence.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.paths import assets_dir

Image = npt.NDArray[np.uint8]
Xyxy = tuple[int, int, int, int]


@cache
def photo(name: str) -> Image:
    """A shared photo (assets/images/<name>), read once."""
    path = assets_dir() / "images" / name
    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(f"{path}: cannot read the photo")
    return np.asarray(image, np.uint8)


@cache
def video_frame(name: str, at_s: float) -> Image:
    """The frame of a shared video (assets/videos/<name>) shown at ``at_s``."""
    path: Path = assets_dir() / "videos" / name
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise FileNotFoundError(f"{path}: cannot open the video")
        cap.set(cv2.CAP_PROP_POS_MSEC, at_s * 1000.0)
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok:
        raise ValueError(f"{path}: no frame at {at_s} s")
    return np.asarray(frame, np.uint8)


def cover(image: Image, wh: tuple[int, int]) -> Image:
    """``image`` scaled to cover ``wh`` and centre-cropped (as sample_videos/make_clips.py)."""
    h, w = image.shape[:2]
    scale = max(wh[0] / w, wh[1] / h)
    size = (round(w * scale), round(h * scale))
    scaled = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
    y0, x0 = (scaled.shape[0] - wh[1]) // 2, (scaled.shape[1] - wh[0]) // 2
    return np.ascontiguousarray(scaled[y0 : y0 + wh[1], x0 : x0 + wh[0]])


def cutout(
    image: Image, xyxy: Xyxy, scale: float, mask: str = "auto", feather_px: int = 9
) -> tuple[Image, Image]:
    """The crop ``xyxy`` of ``image`` scaled by ``scale``, and a soft alpha (0..255).

    ``auto``: an ellipse for a tall crop (a person), a feathered rectangle otherwise (a
    vehicle), so no hard edge shows. ``grabcut``: the object's own silhouette."""
    x0, y0, x1, y1 = xyxy
    if not (0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]):
        raise ValueError(f"crop {xyxy} is outside the {image.shape[1]}x{image.shape[0]} image")
    w, h = max(2, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale))
    crop = np.asarray(cv2.resize(image[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_AREA))
    if mask == "auto":
        mask = "ellipse" if h > w else "rect"
    alpha = np.zeros((h, w), np.uint8)
    if mask == "ellipse":
        cv2.ellipse(alpha, (w // 2, h // 2), (max(1, w // 2 - 2), max(1, h // 2 - 2)), 0, 0,
                    360, 255, -1)  # fmt: skip
    elif mask == "grabcut":
        alpha = _grabcut(image, xyxy, (w, h))
    else:
        cv2.rectangle(alpha, (4, 4), (w - 5, h - 5), 255, -1)
    soft = cv2.GaussianBlur(alpha, (feather_px, feather_px), 0)
    return np.asarray(crop, np.uint8), np.asarray(soft, np.uint8)


def _grabcut(image: Image, xyxy: Xyxy, wh: tuple[int, int]) -> Image:
    x0, y0, x1, y1 = xyxy
    pad = 10
    gx0, gy0 = max(0, x0 - pad), max(0, y0 - pad)
    gx1, gy1 = min(image.shape[1], x1 + pad), min(image.shape[0], y1 + pad)
    sub = np.ascontiguousarray(image[gy0:gy1, gx0:gx1])
    labels = np.zeros(sub.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's initial clustering draws on OpenCV's generator
    cv2.grabCut(sub, labels, (x0 - gx0, y0 - gy0, x1 - x0, y1 - y0), bgd, fgd, 5,
                cv2.GC_INIT_WITH_RECT)  # fmt: skip
    fg = np.where((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    fg = fg[y0 - gy0 : y1 - gy0, x0 - gx0 : x1 - gx0]
    return np.asarray(cv2.resize(fg, wh, interpolation=cv2.INTER_LINEAR), np.uint8)


def parasol(size_px: tuple[int, int], colours: list[tuple[int, int, int]]) -> tuple[Image, Image]:
    """A market parasol on a pole: a fan of coloured panels with a scalloped rim, lit from
    above. YOLOX-Nano calls it ``umbrella`` (0.5-0.7 at 180 px wide on the shared streets)."""
    w, h = size_px
    image, alpha = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)
    cx, top, radius = w // 2, round(w * 0.08), w // 2 - 2
    rim = top + round(w * 0.4)
    n = 8
    rim_pts = [
        (cx + radius * math.cos(a), rim + w * 0.12 * math.sin(a))
        for a in np.linspace(math.pi, 0, n * 4 + 1)
    ]
    for i in range(n):
        panel = np.array([(cx, top), *rim_pts[i * 4 : (i + 1) * 4 + 1]], np.int32)
        colour = colours[i % len(colours)]
        cv2.fillPoly(image, [panel], colour, cv2.LINE_AA)
        cv2.fillPoly(alpha, [panel], 255, cv2.LINE_AA)
        px, py = rim_pts[i * 4 + 2]
        cv2.circle(image, (round(px), round(py)), max(2, w // 30), colour, -1)
        cv2.circle(alpha, (round(px), round(py)), max(2, w // 30), 255, -1)
    shade = np.linspace(1.0, 0.75, h, dtype=np.float32)[:, None, None]
    image = (image * shade).astype(np.uint8)
    pole = max(2, w // 40)
    cv2.line(image, (cx, top), (cx, h - 1), (90, 90, 90), pole)
    cv2.line(alpha, (cx, rim), (cx, h - 1), 255, pole)
    return image, np.asarray(cv2.GaussianBlur(alpha, (3, 3), 0), np.uint8)


def box(size_px: tuple[int, int], colours: list[tuple[int, int, int]]) -> tuple[Image, Image]:
    """A cardboard box seen a little from above: a lit top face, a front face, a tape line."""
    w, h = size_px
    base = np.array(colours[0], np.float32)
    image = np.empty((h, w, 3), np.uint8)
    top_h = max(2, h // 3)
    image[:top_h] = np.clip(base * 1.15, 0, 255).astype(np.uint8)
    image[top_h:] = np.clip(base * 0.8, 0, 255).astype(np.uint8)
    cv2.line(image, (w // 2, 0), (w // 2, top_h), (200, 200, 205), max(1, w // 12))
    cv2.line(image, (0, top_h), (w - 1, top_h), tuple(int(c * 0.6) for c in base), 1)
    alpha = np.full((h, w), 255, np.uint8)
    alpha[:, :1] = alpha[:, -1:] = alpha[:1] = 128
    return image, alpha


def bag(size_px: tuple[int, int], colours: list[tuple[int, int, int]]) -> tuple[Image, Image]:
    """A tied bin bag: a lumpy dark body with a knot and a soft highlight."""
    w, h = size_px
    image = np.zeros((h, w, 3), np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    colour = tuple(int(c) for c in colours[0])
    body_h = round(h * 0.8)
    centre, axes = (w // 2, h - body_h // 2 - 1), (w // 2 - 1, body_h // 2)
    cv2.ellipse(image, centre, axes, 0, 0, 360, colour, -1, cv2.LINE_AA)
    cv2.ellipse(alpha, centre, axes, 0, 0, 360, 255, -1, cv2.LINE_AA)
    knot = (w // 2, max(2, (h - body_h) // 2 + 1))
    cv2.circle(image, knot, max(2, w // 8), colour, -1, cv2.LINE_AA)
    cv2.circle(alpha, knot, max(2, w // 8), 255, -1, cv2.LINE_AA)
    glint = (w // 3, h - body_h // 2 - body_h // 6)
    light = tuple(min(255, int(c) + 60) for c in colour)
    cv2.ellipse(image, glint, (max(1, w // 8), max(1, body_h // 6)), 30, 0, 360, light, -1)
    image = np.asarray(cv2.GaussianBlur(image, (3, 3), 0), np.uint8)
    return image, np.asarray(cv2.GaussianBlur(alpha, (3, 3), 0), np.uint8)


def paste(frame: Image, crop: Image, alpha: Image, x: int, y_bottom: int) -> None:
    """Blend ``crop`` into ``frame`` in place, its top-left at (x, y_bottom - height); the
    parts outside the frame are cut off."""
    h, w = crop.shape[:2]
    fh, fw = frame.shape[:2]
    y = y_bottom - h
    fx0, fx1 = max(0, x), min(fw, x + w)
    fy0, fy1 = max(0, y), min(fh, y + h)
    if fx0 >= fx1 or fy0 >= fy1:
        return
    region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    src = crop[fy0 - y : fy1 - y, fx0 - x : fx1 - x].astype(np.float32)
    a = alpha[fy0 - y : fy1 - y, fx0 - x : fx1 - x, None].astype(np.float32) / 255
    frame[fy0:fy1, fx0:fx1] = (region + a * (src - region)).astype(np.uint8)
