"""The scenario suite's generator (edge/tools/scenarios) and its recipes.

Fast checks: every recipe in sample_videos/scenarios validates and has its truth and camera
config; a broken recipe is rejected naming file, line and field; the same recipe renders the
same frames; lost frames really are gaps in the video's timestamps; a built video is reused
until its recipe changes. Videos are built from the shared photos into tmp_path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from contract.errors import ConfigError
from contract.vocabulary import CAMERA_TAMPER
from edge.camera.view import VIEW_ZONE
from edge.config import load_camera_config
from edge.sources import open_source
from edge.tools.evaluation import load_truth
from edge.tools.scenarios import (
    build_scenario,
    find_scenarios,
    load_recipe,
    render_frames,
)
from edge.tools.scenarios.compose import position
from tests.conftest import REPO

SUITE = REPO / "sample_videos" / "scenarios"
VIDEO_TYPES = {"crowding", "illegal_parking", "nonmotor_parking", "street_vending", "litter"}


def _short(tmp_path: Path, name: str, text: str) -> Path:
    """A recipe file in tmp_path beside a copy of the camera config it names."""
    shutil.copy(SUITE / "kerb-road.camera.yaml", tmp_path / "kerb-road.camera.yaml")
    path = tmp_path / f"{name}.recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


SHORT = """\
name: {name}
camera: kerb-road.camera.yaml
duration_s: {duration}
seed: 3
background: {{photo: 000000008211.jpg}}
sprites:
  car: {{photo: 000000001532.jpg, xyxy: [225, 361, 417, 479], mask: rect}}
actors:
  - {{sprite: car, scale: 0.9, keys: [[0, -100, 425], [1, 220, 425]]}}
camera_motion: {{shake_px: 2, noise_sigma: 3}}
weather: {{kind: rain}}
encoding: {encoding}
"""


def test_every_recipe_validates_with_its_truth_and_camera(tmp_path: Path) -> None:
    scenarios = find_scenarios(SUITE, tmp_path)
    assert len(scenarios) >= 25
    per_type: dict[str, int] = {}
    frames = 0
    for sc in scenarios:
        recipe = load_recipe(sc.recipe_path)
        truth = load_truth(sc.truth_path)
        cfg = load_camera_config(sc.camera_path)
        assert truth.video == f"{sc.name}.mp4"
        assert truth.notes, f"{sc.truth_path}: notes say how the times were set"
        zones = {z.name: {r.type for r in z.rules} for z in cfg.zones}
        # The tamper monitor watches every camera (edge/camera/view.py), as zone "camera".
        zones[VIEW_ZONE] = {CAMERA_TAMPER} if cfg.tamper.enabled else set()
        for ev in truth.events:
            assert ev.type in zones.get(ev.zone, set()), f"{sc.truth_path}: {ev.type}@{ev.zone}"
            assert ev.start_s < recipe.duration_s
        kinds = {r.type for z in cfg.zones for r in z.rules}
        assert len(kinds & VIDEO_TYPES) >= 1
        for kind in kinds & VIDEO_TYPES:
            per_type[kind] = per_type.get(kind, 0) + 1
        frames += recipe.frame_count
    assert per_type["crowding"] >= 5
    assert per_type["illegal_parking"] >= 5
    assert per_type["litter"] >= 6
    assert per_type["nonmotor_parking"] >= 2
    assert per_type["street_vending"] >= 2
    # The whole suite replays in well under 3 minutes on two cores (~9 ms a frame).
    assert frames <= 9500


def test_a_bad_recipe_names_file_line_and_field(tmp_path: Path) -> None:
    path = _short(tmp_path, "bad", SHORT.format(name="bad", duration=2, encoding="{fps: 10}"))
    path.write_text(path.read_text().replace("sprite: car", "sprite: van"), encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"bad\.recipe\.yaml:9: actors\[0\]\.sprite: unknown sprite 'van'"
    ):
        load_recipe(path)
    path.write_text(
        SHORT.format(name="bad", duration=2, encoding="{fps: 10, bitrate: 5}"), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"bad\.recipe\.yaml:12: encoding\.bitrate: unknown key"):
        load_recipe(path)
    path.write_text(SHORT.format(name="other", duration=2, encoding="{}"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.recipe\.yaml:1: name: 'other' must match"):
        load_recipe(path)


def test_paths_hold_still_at_their_last_key() -> None:
    keys = [[1.0, 0.0, 10.0], [3.0, 100.0, 10.0]]
    assert position(keys, 0.5) is None
    assert position(keys, 2.0) == (50.0, 10.0)
    assert position(keys, 9.0) == (100.0, 10.0)


def test_the_same_recipe_renders_the_same_frames(tmp_path: Path) -> None:
    path = _short(tmp_path, "same", SHORT.format(name="same", duration=1, encoding="{}"))
    recipe = load_recipe(path)
    first = [f.image_bgr for f in render_frames(recipe)]
    second = [f.image_bgr for f in render_frames(recipe)]
    assert len(first) == 10
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    # Shake, rain and noise change every frame: the frames are not all the same picture.
    assert not np.array_equal(first[5], first[6])
    other = recipe.model_copy(update={"seed": 4})
    assert not np.array_equal(next(iter(render_frames(other))).image_bgr, first[0])


def test_dropped_frames_are_gaps_in_the_timestamps(tmp_path: Path) -> None:
    enc = "{fps: 2, drop_ranges_s: [[1.5, 3.0]], drop_prob: 0.3}"
    path = _short(tmp_path, "drops", SHORT.format(name="drops", duration=6, encoding=enc))
    rendered = list(render_frames(load_recipe(path)))
    kept = [f.ts_s for f in rendered if not f.dropped]
    assert not {1.5, 2.0, 2.5} & set(kept)
    assert 0.0 in kept
    assert len(kept) < len(rendered)
    video = build_scenario(path, tmp_path / "out")
    with open_source(str(video), realtime=False) as src:
        read = [f.ts_s for f in src.frames()]
    assert read == pytest.approx(kept, abs=1e-3)
    assert max(np.diff(read)) >= 2.0  # 1.0 s -> 3.0 s at least: the lost run of frames


def test_a_built_video_is_reused_until_its_recipe_changes(tmp_path: Path) -> None:
    path = _short(tmp_path, "cache", SHORT.format(name="cache", duration=1, encoding="{}"))
    out = tmp_path / "out"
    video = build_scenario(path, out)
    first = video.stat().st_mtime_ns
    assert build_scenario(path, out).stat().st_mtime_ns == first
    later = first / 1e9 + 5
    os.utime(path, (later, later))
    assert build_scenario(path, out).stat().st_mtime_ns != first
    with open_source(str(video), realtime=False) as src:
        frames = list(src.frames())
    assert len(frames) == 10
    assert frames[0].image_bgr.shape == (480, 640, 3)
