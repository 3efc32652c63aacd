"""The scenario recipe: what a generated street video shows, as a strict pydantic model.

A recipe is data, not code, so that a scenario is reviewed by reading one short YAML file
next to its truth file: which photo is the street, which cut-outs come and go along which
path, and what the camera does to the picture (shake, weather, light, compression, dropped
frames). Every position is in output pixels of the finished frame; every time is media
seconds. Unknown keys are errors, and an error names the file, its line and the field
(``scenarios/x.recipe.yaml:12: actors[2].sprite: ...``), like the camera configs do.

Paths (``keys``) are lists of ``[t_s, x_px, y_px]`` with x the centre and y the bottom of the
object (where it touches the ground): the object appears at the first key's time, moves in a
straight line from key to key and stays at the last key to the end of the video. Whatever
leaves drives or walks out of the frame, so nothing ever vanishes on the spot.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from contract.config.errors import config_error_from_validation
from contract.config.yaml_source import YamlDocument, read_yaml
from contract.errors import ConfigError

RECIPE_SUFFIX = ".recipe.yaml"

Key = Annotated[list[float], Field(min_length=3, max_length=3)]
Xyxy = Annotated[list[int], Field(min_length=4, max_length=4)]
Bgr = Annotated[list[Annotated[int, Field(ge=0, le=255)]], Field(min_length=3, max_length=3)]
Pair = Annotated[list[float], Field(min_length=2, max_length=2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_keys(keys: list[list[float]]) -> list[list[float]]:
    times = [k[0] for k in keys]
    if any(b < a for a, b in itertools.pairwise(times)):
        raise ValueError("keys must be in time order ([t_s, x_px, y_px], t_s not decreasing)")
    if times and times[0] < 0:
        raise ValueError("key times must be >= 0")
    return keys


class PixelSource(_Strict):
    """A shared photo (assets/images) or a frame of a shared video (assets/videos)."""

    photo: str | None = None
    video: str | None = None
    frame_s: float = Field(0.0, ge=0, description="Which frame of the video.")

    @model_validator(mode="after")
    def _one_source(self) -> PixelSource:
        if (self.photo is None) == (self.video is None):
            raise ValueError("give exactly one of 'photo' and 'video'")
        return self


class Background(PixelSource):
    """The empty street: the photo (or its ``crop_xyxy`` region) scaled to cover the frame."""

    crop_xyxy: Xyxy | None = None
    flip: bool = False
    overcast: float = Field(0.0, ge=0, le=1, description="Wash towards a grey sky this much.")


class CutSprite(PixelSource):
    """An object cut from a photo at ``xyxy`` (a box the detector finds there) with a soft
    alpha: ``ellipse`` suits people, ``rect`` vehicles, ``auto`` picks by the box's shape."""

    xyxy: Xyxy
    mask: Literal["auto", "ellipse", "rect", "grabcut"] = "auto"
    flip: bool = False


class DrawnSprite(_Strict):
    """An object drawn by the generator: a market parasol (on a pole), a cardboard box, a
    bin bag. ``size_px`` is its size at scale 1."""

    draw: Literal["parasol", "box", "bag"]
    size_px: Pair
    colours: list[Bgr] = Field(default_factory=lambda: [[40, 40, 220], [235, 235, 235]])


def _sprite_tag(value: Any) -> str:
    if isinstance(value, dict):
        return "drawn" if "draw" in value else "cut"
    return "drawn" if isinstance(value, DrawnSprite) else "cut"


Sprite = Annotated[
    Annotated[CutSprite, Tag("cut")] | Annotated[DrawnSprite, Tag("drawn")],
    Discriminator(_sprite_tag),
]


class Actor(_Strict):
    """One sprite on a path: a car that drives in and parks, a person who walks by."""

    sprite: str
    scale: float = Field(1.0, gt=0, le=4)
    keys: list[Key] = Field(min_length=1)
    note: str = ""

    _keys = field_validator("keys")(_check_keys)


class Shadow(_Strict):
    """A shadow on the ground (darkens what is under it, drawn before the actors): an
    ellipse or a polygon (points relative to the path's position) with a soft edge."""

    shape: Literal["ellipse", "polygon"] = "ellipse"
    size_px: Pair = Field(default_factory=lambda: [120.0, 40.0])
    polygon: list[Pair] = Field(default_factory=list)
    keys: list[Key] = Field(min_length=1)
    darkness: float = Field(0.45, gt=0, lt=1, description="Share of the light it takes away.")
    softness_px: int = Field(9, ge=1, le=101)

    _keys = field_validator("keys")(_check_keys)

    @model_validator(mode="after")
    def _polygon(self) -> Shadow:
        if self.shape == "polygon" and len(self.polygon) < 3:
            raise ValueError("a polygon shadow needs at least 3 points")
        return self


class CameraMotion(_Strict):
    shake_px: float = Field(0.0, ge=0, le=10, description="Random offset every frame, up to.")
    drift_px: Pair = Field(default_factory=lambda: [0.0, 0.0], description="Reached at the end.")
    noise_sigma: float = Field(0.0, ge=0, le=40, description="Sensor noise, grey levels.")


class Weather(_Strict):
    kind: Literal["rain", "snow"]
    start_s: float = Field(0.0, ge=0)
    end_s: float | None = None


class Tamper(_Strict):
    """Someone or something at the lens from ``start_s`` to ``end_s`` (None: to the end):
    ``black`` tape or a cap, ``hand`` a hand or cloth in front of it, ``defocus`` the focus
    lost over ``ramp_s`` (to a Gaussian blur of ``blur_frac`` of the width), ``turn`` the
    camera panned by ``pan_frac`` of the world's width (edge/quality/simulate.py draws each)."""

    kind: Literal["black", "hand", "defocus", "turn"]
    start_s: float = Field(ge=0)
    end_s: float | None = None
    ramp_s: float = Field(2.0, ge=0)
    blur_frac: float = Field(0.015, gt=0, le=0.1)
    pan_frac: float = Field(0.35, gt=0, le=0.4)


class Light(_Strict):
    """``dusk``: brightness falls to ``gain`` between start_s and end_s, bluer; ``lights_on``:
    at start_s the picture jumps by ``gain`` and turns warm (street lights); ``ir``: at
    start_s the camera switches to infrared (grey, foliage bright), times ``gain``."""

    kind: Literal["dusk", "lights_on", "ir"]
    start_s: float = Field(ge=0)
    end_s: float | None = None
    gain: float = Field(1.0, gt=0, le=4)

    @model_validator(mode="after")
    def _ramp(self) -> Light:
        if self.kind == "dusk" and (self.end_s is None or self.end_s <= self.start_s):
            raise ValueError("dusk needs end_s after start_s (the ramp)")
        return self


class Encoding(_Strict):
    fps: float = Field(10.0, gt=0, le=30)
    bitrate_kbps: int | None = Field(None, ge=20, description="None: high quality (CRF 18).")
    drop_ranges_s: list[Pair] = Field(default_factory=list, description="Frames never written.")
    drop_prob: float = Field(0.0, ge=0, lt=1, description="Each other frame lost this often.")

    @field_validator("drop_ranges_s")
    @classmethod
    def _ranges(cls, ranges: list[list[float]]) -> list[list[float]]:
        for t0, t1 in ranges:
            if not 0 < t0 < t1:
                raise ValueError("each drop range is [start_s, end_s] with 0 < start_s < end_s")
        return ranges


class Recipe(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    camera: str = Field(description="Camera config file, in the recipe's folder.")
    notes: str = ""
    duration_s: float = Field(gt=0, le=120)
    size_px: Annotated[list[int], Field(min_length=2, max_length=2)] = Field(
        default_factory=lambda: [640, 480]
    )
    seed: int = 0
    background: Background
    sprites: dict[str, Sprite] = Field(default_factory=dict)
    actors: list[Actor] = Field(default_factory=list)
    shadows: list[Shadow] = Field(default_factory=list)
    camera_motion: CameraMotion = Field(default_factory=CameraMotion)
    weather: Weather | None = None
    light: list[Light] = Field(default_factory=list)
    tamper: list[Tamper] = Field(default_factory=list)
    encoding: Encoding = Field(default_factory=Encoding)

    @field_validator("actors")
    @classmethod
    def _actors_name_sprites(cls, actors: list[Actor], info: Any) -> list[Actor]:
        sprites = info.data.get("sprites", {})
        for actor in actors:
            if actor.sprite not in sprites:
                known = ", ".join(sorted(sprites)) or "none"
                raise ValueError(f"unknown sprite '{actor.sprite}' (sprites: {known})")
        return actors

    @property
    def frame_count(self) -> int:
        """Frames rendered (before any are dropped)."""
        return round(self.duration_s * self.encoding.fps)


def _check_sprite_names(doc: YamlDocument) -> None:
    """An actor naming a sprite the recipe lacks, pointed at exactly (the model's own check
    can only name the whole actors list)."""
    sprites, actors = doc.data.get("sprites"), doc.data.get("actors")
    if not isinstance(sprites, dict) or not isinstance(actors, list):
        return
    for i, actor in enumerate(actors):
        name = actor.get("sprite") if isinstance(actor, dict) else None
        if isinstance(name, str) and name not in sprites:
            known = ", ".join(sorted(str(k) for k in sprites)) or "none"
            where = doc.where(("actors", i, "sprite"))
            raise ConfigError(f"{where}: actors[{i}].sprite: unknown sprite '{name}' ({known})")


def load_recipe(path: Path) -> Recipe:
    """Read and check a recipe; errors name the file, line and field.

    The recipe's name must be its file name (``<name>.recipe.yaml``) and its camera config
    must exist beside it, so a suite folder cannot hold a recipe that points nowhere."""
    doc = read_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{path}: a recipe is a mapping (name, camera, background, ...)")
    _check_sprite_names(doc)
    try:
        recipe = Recipe.model_validate(doc.data)
    except ValidationError as exc:
        raise config_error_from_validation(doc, exc) from None
    if path.name != recipe.name + RECIPE_SUFFIX:
        raise ConfigError(
            f"{doc.where(('name',))}: name: '{recipe.name}' must match the file name "
            f"'{path.name}' (<name>{RECIPE_SUFFIX})"
        )
    if not (path.parent / recipe.camera).is_file():
        raise ConfigError(
            f"{doc.where(('camera',))}: camera: no camera config '{recipe.camera}' beside it"
        )
    return recipe
