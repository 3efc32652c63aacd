"""The world in front of the camera at time t: the street photo, shadows on the ground, and
the cut-outs (cars, people, a parasol, a bag) where their paths put them.

Actors are drawn far to near (by the bottom of their box: lower in the picture is nearer the
camera), so a van that stops at the kerb in front of a parked car hides it, and a person
walking along the pavement passes in front of a dropped bag, as on a real street. Shadows are
drawn on the street before the actors: they darken the ground, not the people on it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from edge.tools.scenarios import sprites as sp
from edge.tools.scenarios.recipe import Actor, Background, CutSprite, DrawnSprite, Recipe, Shadow

Image = sp.Image
BoxXyxy = tuple[int, int, int, int]
_DRAWN = {"parasol": sp.parasol, "box": sp.box, "bag": sp.bag}


def position(keys: list[list[float]], t_s: float) -> tuple[float, float] | None:
    """(x centre, y bottom) on the path at ``t_s``, None before the first key.

    From the first key's time on, moving in a straight line between consecutive keys, and
    staying at the last key to the end (a path that ends outside the frame is gone)."""
    if t_s < keys[0][0]:
        return None
    for (t0, x0, y0), (t1, x1, y1) in itertools.pairwise(keys):
        if t0 <= t_s <= t1:
            f = (t_s - t0) / (t1 - t0) if t1 > t0 else 1.0
            return x0 + f * (x1 - x0), y0 + f * (y1 - y0)
    return keys[-1][1], keys[-1][2]


def _source_pixels(src: Background | CutSprite) -> Image:
    if src.photo is not None:
        return sp.photo(src.photo)
    assert src.video is not None  # the recipe checks that one of the two is given
    return sp.video_frame(src.video, src.frame_s)


def background_image(bg: Background, wh: tuple[int, int]) -> Image:
    """The empty street, covering the frame."""
    image = _source_pixels(bg)
    if bg.crop_xyxy is not None:
        x0, y0, x1, y1 = bg.crop_xyxy
        image = image[y0:y1, x0:x1]
    out = sp.cover(image, wh)
    if bg.flip:
        out = np.ascontiguousarray(out[:, ::-1])
    if bg.overcast > 0:
        grey = np.full_like(out, 200)
        out = np.asarray(cv2.addWeighted(out, 1 - bg.overcast, grey, bg.overcast, 0), np.uint8)
    return out


def sprite_pixels(sprite: CutSprite | DrawnSprite, scale: float) -> tuple[Image, Image]:
    """The sprite's pixels and alpha at ``scale``."""
    if isinstance(sprite, DrawnSprite):
        w, h = (max(2, round(v * scale)) for v in sprite.size_px)
        colours = [(c[0], c[1], c[2]) for c in sprite.colours]
        return _DRAWN[sprite.draw]((w, h), colours)
    x0, y0, x1, y1 = sprite.xyxy
    crop, alpha = sp.cutout(_source_pixels(sprite), (x0, y0, x1, y1), scale, sprite.mask)
    if sprite.flip:
        crop, alpha = np.ascontiguousarray(crop[:, ::-1]), np.ascontiguousarray(alpha[:, ::-1])
    return crop, alpha


@dataclass(frozen=True)
class Placed:
    """Where an actor is in the world at one time (before the camera moves)."""

    actor: int
    xyxy: BoxXyxy


class World:
    """Everything that is really there, frame after frame; the camera's faults come later."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.wh = (recipe.size_px[0], recipe.size_px[1])
        self.background = background_image(recipe.background, self.wh)
        self._pixels = [sprite_pixels(recipe.sprites[a.sprite], a.scale) for a in recipe.actors]
        self._frame = np.empty_like(self.background)

    def placed(self, t_s: float) -> list[Placed]:
        """The actors in the picture at ``t_s``, far to near."""
        out = []
        for i, actor in enumerate(self.recipe.actors):
            pos = position(actor.keys, t_s)
            if pos is None:
                continue
            out.append(Placed(i, self._box(i, pos)))
        return sorted(out, key=lambda p: (p.xyxy[3], p.actor))

    def _box(self, i: int, pos: tuple[float, float]) -> BoxXyxy:
        h, w = self._pixels[i][0].shape[:2]
        x0 = round(pos[0] - w / 2)
        y1 = round(pos[1])
        return x0, y1 - h, x0 + w, y1

    def render(self, t_s: float) -> Image:
        """The world at ``t_s`` (a buffer reused by the next call)."""
        frame = self._frame
        frame[:] = self.background
        if self.recipe.shadows:
            _shade(frame, self.recipe.shadows, t_s)
        for p in self.placed(t_s):
            crop, alpha = self._pixels[p.actor]
            sp.paste(frame, crop, alpha, p.xyxy[0], p.xyxy[3])
        return frame

    def actor_box(self, actor: Actor, t_s: float) -> BoxXyxy | None:
        """Where ``actor`` (one of the recipe's) is at ``t_s``, in world pixels."""
        i = self.recipe.actors.index(actor)
        pos = position(actor.keys, t_s)
        return None if pos is None else self._box(i, pos)


def _shade(frame: Image, shadows: list[Shadow], t_s: float) -> None:
    """Darken the ground under each shadow in view, with a soft edge."""
    h, w = frame.shape[:2]
    light = np.ones((h, w), np.float32)
    any_drawn = False
    for shadow in shadows:
        pos = position(shadow.keys, t_s)
        if pos is None:
            continue
        mask = np.zeros((h, w), np.uint8)
        x, y = pos
        if shadow.shape == "ellipse":
            sw, sh = shadow.size_px
            centre = (round(x), round(y - sh / 2))
            cv2.ellipse(mask, centre, (round(sw / 2), round(sh / 2)), 0, 0, 360, 255, -1)
        else:
            pts = np.array([(x + px, y + py) for px, py in shadow.polygon], np.float32)
            cv2.fillPoly(mask, [np.rint(pts).astype(np.int32)], 255, cv2.LINE_AA)
        k = shadow.softness_px | 1
        soft: npt.NDArray[np.float32] = cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32)
        light *= 1 - shadow.darkness * soft / 255
        any_drawn = True
    if any_drawn:
        shaded = frame.astype(np.float32) * light[:, :, None]
        frame[:] = np.clip(shaded, 0, 255).astype(np.uint8)
