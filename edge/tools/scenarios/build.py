"""Render a recipe to a video: world -> camera -> encoder, seeded, and cached on disk.

Videos are H.264 in MP4 through PyAV, one presentation timestamp per frame in units of the
recipe's frame period. A dropped frame is simply not written, so the file carries the gap in
its timestamps exactly as a camera that lost frames does, and a reader sees the jump. Low
bitrate is the encoder's own rate control (real blocking and smearing), not a simulation.

The same recipe gives the same frames on every run: every random draw comes from generators
spawned from the recipe's seed, and each frame is rendered whether or not it is dropped. A
video newer than its recipe (and the generator's code) is not built again (``force``
rebuilds); it is written to a temporary name first, so an interrupted build never leaves a
file that looks finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from edge.tools.scenarios.compose import World
from edge.tools.scenarios.disturb import Camera
from edge.tools.scenarios.lens import Lens
from edge.tools.scenarios.recipe import RECIPE_SUFFIX, Recipe, load_recipe
from edge.tools.scenarios.sprites import Image

TRUTH_SUFFIX = ".truth.yaml"
# High quality unless the recipe asks for a low bitrate: the picture the camera would send.
_CRF = "18"
_PRESET = "veryfast"


@dataclass(frozen=True)
class RenderedFrame:
    index: int
    ts_s: float
    image_bgr: Image
    #: Lost on the way: rendered (so the rest stays the same) but not written.
    dropped: bool


def render_frames(recipe: Recipe) -> Iterator[RenderedFrame]:
    """Every frame of the recipe, in order, with whether the encoder will drop it."""
    seed = np.random.SeedSequence(recipe.seed)
    world_seed, drop_seed = seed.spawn(2)
    world = World(recipe)
    camera = Camera(recipe, world_seed)
    drops = np.random.default_rng(drop_seed)
    lens = Lens(recipe.tamper, np.random.default_rng(recipe.seed + 1))
    enc = recipe.encoding
    for index in range(recipe.frame_count):
        ts_s = index / enc.fps
        lost = float(drops.random()) < enc.drop_prob
        in_range = any(t0 <= ts_s < t1 for t0, t1 in enc.drop_ranges_s)
        image = lens(camera.capture(world.render(ts_s), ts_s), ts_s)
        # The first frame is never lost: it anchors the timeline a reader starts at.
        yield RenderedFrame(index, ts_s, image, index > 0 and (lost or in_range))


def _rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1000)


def write_video(recipe: Recipe, frames: Iterator[RenderedFrame], path: Path) -> int:
    """Encode the frames not dropped; returns how many were written."""
    rate = _rate(recipe.encoding.fps)
    written = 0
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = recipe.size_px
        stream.pix_fmt = "yuv420p"
        kbps = recipe.encoding.bitrate_kbps
        if kbps is None:
            stream.options = {"crf": _CRF, "preset": _PRESET}
        else:
            stream.bit_rate = kbps * 1000
            stream.options = {"preset": _PRESET}
        stream.codec_context.time_base = 1 / rate
        for f in frames:
            if f.dropped:
                continue
            vf = av.VideoFrame.from_ndarray(f.image_bgr, format="bgr24")
            vf.pts, vf.time_base = f.index, 1 / rate
            out.mux(stream.encode(vf))
            written += 1
        out.mux(stream.encode(None))
    return written


def _inputs_mtime(recipe_path: Path) -> float:
    """When the video's inputs last changed: the recipe, or the generator's own code."""
    code = Path(__file__).parent.glob("*.py")
    return max(p.stat().st_mtime for p in [recipe_path, *code])


def build_scenario(recipe_path: Path, out_dir: Path, *, force: bool = False) -> Path:
    """``out_dir/<name>.mp4`` from the recipe; kept when newer than the recipe (and than the
    generator's code, which decides the pixels as much as the recipe does)."""
    recipe = load_recipe(recipe_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{recipe.name}.mp4"
    if not force and path.is_file() and path.stat().st_mtime > _inputs_mtime(recipe_path):
        return path
    tmp = path.with_name(f".{path.name}.part")
    try:
        write_video(recipe, render_frames(recipe), tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@dataclass(frozen=True)
class Scenario:
    """One scenario of a suite folder and where its video is (or will be) built."""

    name: str
    recipe_path: Path
    truth_path: Path
    camera_path: Path
    video_path: Path


def find_scenarios(suite_dir: Path, out_dir: Path) -> list[Scenario]:
    """Every ``<name>.recipe.yaml`` of ``suite_dir``, by name; each must have its truth file."""
    out = []
    for recipe_path in sorted(suite_dir.glob(f"*{RECIPE_SUFFIX}")):
        recipe = load_recipe(recipe_path)
        truth = suite_dir / f"{recipe.name}{TRUTH_SUFFIX}"
        if not truth.is_file():
            raise FileNotFoundError(f"{recipe_path}: no truth file {truth.name} beside it")
        out.append(
            Scenario(
                recipe.name,
                recipe_path,
                truth,
                suite_dir / recipe.camera,
                out_dir / f"{recipe.name}.mp4",
            )
        )
    if not out:
        raise FileNotFoundError(f"{suite_dir}: no *{RECIPE_SUFFIX} files")
    return out


def build_suite(
    suite_dir: Path,
    out_dir: Path,
    progress: Callable[[Scenario], None] | None = None,
    *,
    force: bool = False,
) -> list[Scenario]:
    """Build every scenario of ``suite_dir`` into ``out_dir`` (those not up to date);
    ``progress`` is called with each scenario once its video is there."""
    scenarios = find_scenarios(suite_dir, out_dir)
    for sc in scenarios:
        build_scenario(sc.recipe_path, out_dir, force=force)
        if progress is not None:
            progress(sc)
    return scenarios
