"""Picture measures for tamper and video-quality diagnosis, on a small grey image.

A frame is measured shrunk to the work width (grey, INTER_AREA: an average of pixels, so
sensor noise shrinks with it and a few pixels of shake become one or two). Levels are grey
levels of that work image (0-255), shares are of its pixels. ``Features`` holds what one
frame gives on its own; ``Reference`` is the camera's learnt picture, and its ``compare``
turns a frame's features into ``Measures`` against it.

On its own, a frame gives:

- brightness and contrast: mean and standard deviation of its grey levels;
- local contrast: the median over a grid of cells of each cell's standard deviation (after
  a one-pixel blur). A flat cloth or card over the lens drives it to almost nothing, a
  scene keeps it;
- sharpness: the spread of the Laplacian divided by the contrast, i.e. fine detail per grey
  level of contrast. Blind to exposure (dusk, lights, the infrared tone curve scale both
  alike); a defocused lens loses fine detail long before coarse contrast. Of the variants
  tried (per cell, per brightness instead of contrast) this kept the widest gap between a
  strong blur and a car park with a large white car driving through;
- noise: Immerkaer's estimate (a 3x3 kernel that cancels planes and straight edges and keeps
  pixel-to-pixel noise) over the flatter pixels only (edges below their mean), so edges and
  texture do not count as noise; snow and rain are a few pixels in a hundred;
- saturated: the share of pixels at or above SATURATED_LEVEL;
- edges: |d/dx| and |d/dy| (Sobel of the image blurred over a pixel), for the scene match.

Against the reference:

- scene_match: does the view still show the reference scene? Each direction's edge image
  is cut into a grid of cells; each cell of the frame is matched with the reference's cell
  by normalised correlation (cv2.matchTemplate, TM_CCOEFF_NORMED) over shifts of up to
  ``shift_px``; per direction the score is the median of the cells' best scores, weighted by
  the square of the structure the reference has in the cell; the lower direction counts.
  Why this and not ORB feature matching: edge magnitudes carry the scene's structure and
  not its exposure, and correlation per cell removes gain and offset, so dusk, lights and
  the infrared tone curve leave it high; the shift search absorbs shake; the weighted
  median ignores people and cars over some cells, and flat cells (a white wall) that carry
  nothing; it is dense, so it works on bare asphalt or a white wall where ORB finds too few
  repeatable corners on a 320-pixel frame; its cost is fixed and small. Directions apart:
  a pan slides horizontal edges (a kerb, a skirting board, a table's edge) along themselves,
  so they still match after it; the vertical ones do not (a tilt: the other way round). A
  pan of a quarter of the view moves everything else far beyond the search: chance.
- brightness, local contrast, sharpness and noise as ratios to the reference's.
- glare_loss: the share of the reference's structure (its edge energy) under saturated
  pixels that a change of exposure does not explain. The exposure change is the median ratio
  of frame to reference over unsaturated pixels; a saturated pixel is explained when its
  reference level times that ratio reaches GLARE_EXPLAINED_LEVEL. Lights switching on
  brighten the whole picture by one factor, so what saturates is what that factor carries
  past white (a white wall: explained); a bloom of light in the lens saturates a patch
  whatever was there and brightens the rest only a little.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Grey = npt.NDArray[np.uint8]
FloatImage = npt.NDArray[np.float32]

SATURATED_LEVEL = 250
#: A saturated pixel whose reference level times the exposure change reaches this is
#: explained by the exposure change.
GLARE_EXPLAINED_LEVEL = 200.0
#: Reference pixels darker than this do not estimate the exposure change (noise rules).
GAIN_MIN_LEVEL = 30.0
#: Glare is judged only with at least this share of the frame saturated (cheap otherwise).
GLARE_MIN_SATURATED = 0.01
#: Cells (rows, columns) of the scene match and of the local contrast.
GRID = (6, 8)
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
#: Immerkaer: sigma = sqrt(pi / 2) / 6 * mean |frame * kernel| for Gaussian noise.
_NOISE_SCALE = math.sqrt(math.pi / 2.0) / 6.0


def work_grey(frame_bgr: npt.NDArray[np.uint8], work_width_px: int) -> Grey:
    """The frame as measured: grey, ``work_width_px`` wide (never enlarged), by INTER_AREA."""
    if frame_bgr.ndim == 3:
        grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    elif frame_bgr.ndim == 2:
        grey = frame_bgr
    else:
        raise ValueError(f"work_grey: a BGR or grey frame expected, got shape {frame_bgr.shape}")
    h, w = grey.shape[:2]
    if w <= work_width_px:
        return np.ascontiguousarray(grey, np.uint8)
    size = (work_width_px, max(1, round(h * work_width_px / w)))
    return np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), np.uint8)


def edges(grey: Grey) -> FloatImage:
    """|d/dx| and |d/dy| (Sobel) of the image blurred over a pixel (so noise and the last
    pixel of shake make no edges of their own), as (2, h, w): vertical edges first.
    Absolute values: which side of an edge is brighter may swap (infrared renders
    materials differently), the edge stays."""
    smooth = cv2.GaussianBlur(grey, (5, 5), 1.0)
    gx = np.abs(cv2.Sobel(smooth, cv2.CV_32F, 1, 0))
    gy = np.abs(cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    return np.stack([gx, gy]).astype(np.float32)


def cell_spread(image: npt.NDArray[np.generic], grid: tuple[int, int]) -> npt.NDArray[np.float64]:
    """Each cell's standard deviation, in row order (cells cropped to whole pixels)."""
    rows, cols = grid
    ch, cw = image.shape[0] // rows, image.shape[1] // cols
    cells = image[: rows * ch, : cols * cw].astype(np.float64).reshape(rows, ch, cols, cw)
    return np.asarray(cells.std(axis=(1, 3)).ravel(), np.float64)


def change(grey: Grey, previous: Grey | None) -> float:
    """Mean absolute grey-level difference to ``previous`` (nan when there is none)."""
    if previous is None or previous.shape != grey.shape:
        return math.nan
    return float(cv2.norm(grey, previous, cv2.NORM_L1)) / grey.size


@dataclass(frozen=True)
class Features:
    """What one work image gives on its own (see the module docstring)."""

    grey: Grey
    #: edges() of the work image, (2, h, w).
    edges: FloatImage
    brightness: float
    contrast: float
    local_contrast: float
    sharpness: float
    noise: float
    saturated: float

    @classmethod
    def of(cls, grey: Grey) -> Features:
        h, w = grey.shape
        min_h, min_w = GRID[0] * 16, GRID[1] * 16
        if h < min_h or w < min_w:
            raise ValueError(f"Features: a {w}x{h} work image is too small (min {min_w}x{min_h})")
        found = edges(grey)
        mean, std = cv2.meanStdDev(grey)
        contrast = float(std[0, 0])
        laplacian = cv2.Laplacian(cv2.GaussianBlur(grey, (3, 3), 0), cv2.CV_32F)
        return cls(
            grey=grey,
            edges=found,
            brightness=float(mean[0, 0]),
            contrast=contrast,
            local_contrast=float(np.median(cell_spread(cv2.GaussianBlur(grey, (0, 0), 1.0), GRID))),
            sharpness=float(cv2.meanStdDev(laplacian)[1][0, 0]) / max(contrast, 1.0),
            noise=_noise(grey, found),
            saturated=np.count_nonzero(grey >= SATURATED_LEVEL) / grey.size,
        )


def _noise(grey: Grey, found: FloatImage) -> float:
    """Sensor-noise sigma (grey levels) by Immerkaer's kernel where the edges are below
    their mean (the flatter pixels), the border excluded (the kernel replicates it)."""
    response = np.abs(cv2.filter2D(grey.astype(np.float32), -1, _NOISE_KERNEL))
    strength = found[0] + found[1]
    flat = (strength < strength.mean()).astype(np.uint8)
    flat[[0, -1], :] = 0
    flat[:, [0, -1]] = 0
    return _NOISE_SCALE * float(cv2.mean(response, mask=flat)[0])


@dataclass(frozen=True)
class Measures:
    """One analysed frame's measures (see the module docstring); the ratios, the match and
    the glare are nan while there is no reference yet."""

    brightness: float
    contrast: float
    local_contrast: float
    sharpness: float
    noise: float
    saturated: float
    #: Mean absolute grey-level difference to the previous analysed frame (nan: none).
    change: float
    scene_match: float = math.nan
    #: Normalised correlation of the picture's coarse layout (1/8 size, blurred) with the
    #: reference's: a blur keeps it, a turn or a cover loses it.
    coarse_match: float = math.nan
    brightness_ratio: float = math.nan
    local_contrast_ratio: float = math.nan
    sharpness_ratio: float = math.nan
    noise_ratio: float = math.nan
    glare_loss: float = math.nan

    @classmethod
    def alone(cls, f: Features, change_level: float) -> Measures:
        """The frame's own measures, without a reference."""
        return cls(
            f.brightness, f.contrast, f.local_contrast, f.sharpness, f.noise, f.saturated,
            change_level,
        )  # fmt: skip


def _weighted_median(values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2.0)])


def cell_match(image: FloatImage, reference: FloatImage, shift_px: int) -> float:
    """How well the edge image ``image`` matches ``reference`` (both (2, h, w)): per
    direction, the median over the GRID's cells of the best normalised correlation of the
    image's cell (less ``shift_px`` each side) anywhere in the reference's cell, weighted by
    the square of the reference's structure there; the lower of the two directions."""
    _, h, w = image.shape
    rows, cols = GRID
    s = shift_px
    worst = math.inf
    for image_d, reference_d in zip(image, reference, strict=True):
        scores, weights = [], []
        for r in range(rows):
            y0, y1 = r * h // rows, (r + 1) * h // rows
            for c in range(cols):
                x0, x1 = c * w // cols, (c + 1) * w // cols
                template = image_d[y0 + s : y1 - s, x0 + s : x1 - s]
                inner = reference_d[y0 + s : y1 - s, x0 + s : x1 - s]
                weights.append(float(cv2.meanStdDev(inner)[1][0, 0]) ** 2)
                if float(cv2.meanStdDev(template)[1][0, 0]) < 1e-3:
                    scores.append(0.0)  # nothing in the frame's cell: no match
                    continue
                found = cv2.matchTemplate(reference_d[y0:y1, x0:x1], template, cv2.TM_CCOEFF_NORMED)
                scores.append(float(cv2.minMaxLoc(found)[1]))
        median = _weighted_median(np.asarray(scores), np.asarray(weights) + 1e-9)
        worst = min(worst, median)
    return worst


def _coarse(grey: Grey | FloatImage) -> FloatImage:
    h, w = grey.shape[:2]
    small = cv2.resize(
        grey.astype(np.float32), (max(4, w // 8), max(4, h // 8)), interpolation=cv2.INTER_AREA
    )
    return np.asarray(cv2.GaussianBlur(small, (0, 0), 1.0), np.float32)


def coarse_match(grey: Grey, reference_grey: FloatImage) -> float:
    """Normalised correlation of the two pictures' coarse layouts (0 when one is flat)."""
    a, b = _coarse(grey), _coarse(reference_grey)
    if float(a.std()) < 1e-3 or float(b.std()) < 1e-3:
        return 0.0
    return float(cv2.matchTemplate(a, b, cv2.TM_CCOEFF_NORMED)[0, 0])


class Reference:
    """The camera's picture: the mean of the frames it learnt from, then an exponential
    average that the caller moves only while the view is healthy."""

    def __init__(self, shift_px: int) -> None:
        self.shift_px = shift_px
        self.frames = 0
        self._edges: FloatImage | None = None
        self._grey: FloatImage | None = None
        #: brightness, local contrast, sharpness, noise
        self._scalars = np.zeros(4)

    def add(self, f: Features, weight: float | None = None) -> None:
        """Take ``f`` in with ``weight`` (None: as one more frame of a plain mean)."""
        alpha = 1.0 / (self.frames + 1) if weight is None else weight
        scalars = np.array([f.brightness, f.local_contrast, f.sharpness, f.noise])
        if self._edges is None or self._grey is None:
            self._edges, self._grey = f.edges.copy(), f.grey.astype(np.float32)
            self._scalars = scalars
        else:
            self._edges += alpha * (f.edges - self._edges)
            cv2.accumulateWeighted(f.grey, self._grey, alpha)
            self._scalars += alpha * (scalars - self._scalars)
        self.frames += 1

    def compare(self, f: Features, smoothed: FloatImage, change_level: float) -> Measures:
        """``f``'s measures against the reference; ``smoothed``: its edge images as the
        scene match takes them (edge/quality/tamper.py smooths them over time)."""
        if self._edges is None or self._grey is None:
            raise RuntimeError("Reference.compare before any frame was learnt")
        brightness, local_contrast, sharpness, noise = self._scalars.tolist()
        glare = self._glare_loss(f) if f.saturated >= GLARE_MIN_SATURATED else 0.0
        return Measures(
            f.brightness, f.contrast, f.local_contrast, f.sharpness, f.noise, f.saturated,
            change_level,
            scene_match=cell_match(smoothed, self._edges, self.shift_px),
            coarse_match=coarse_match(f.grey, self._grey),
            brightness_ratio=f.brightness / max(brightness, 1.0),
            local_contrast_ratio=f.local_contrast / max(local_contrast, 0.5),
            sharpness_ratio=f.sharpness / max(sharpness, 1e-3),
            noise_ratio=f.noise / max(noise, 0.25),
            glare_loss=glare,
        )  # fmt: skip

    def _glare_loss(self, f: Features) -> float:
        """Share of the reference's edge energy under saturated pixels that the exposure
        change (median frame / reference over unsaturated pixels) does not explain."""
        assert self._grey is not None
        assert self._edges is not None
        saturated = f.grey >= SATURATED_LEVEL
        usable = ~saturated & (self._grey > GAIN_MIN_LEVEL)
        if np.count_nonzero(usable) < 0.05 * f.grey.size:
            gain = 1.0  # (almost) all of it saturated: nothing to tell exposure by
        else:
            gain = float(np.median(f.grey[usable] / self._grey[usable]))
        unexplained = saturated & (self._grey * gain < GLARE_EXPLAINED_LEVEL)
        structure = self._edges[0] + self._edges[1]
        total = float(structure.sum())
        return float(structure[unexplained].sum()) / total if total > 0 else 0.0
