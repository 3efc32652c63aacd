"""left_object / litter on scripted tracks, and the dual background model on real pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from contract.config.camera import BackgroundConfig
from contract.config.rules import LeftObjectRuleConfig, expand_preset
from edge.pipeline.background import StaticForeground
from edge.rules.left_object import LeftObjectRule
from tests.rules_helpers import box, ctx, frame, ids, run, times

BAG_AT = box(500, 400, 40, 40)


def rule(**kw: object) -> LeftObjectRule:
    cfg = LeftObjectRuleConfig.model_validate(
        expand_preset({"preset": "litter", "persist_s": 5, "baseline_s": 1, **kw})
    )
    return LeftObjectRule(cfg, ctx("litter"), ids())  # type: ignore[arg-type]


def person(x: float) -> tuple[int, str, list[float]]:
    return (1, "person", box(x, 340, 60, 180))


def carry(t0: float, t1: float, x0: float, speed: float) -> list:
    """A person walking with a bag in hand."""
    out = []
    for t in times(t0, t1):
        x = x0 + speed * (t - t0)
        out.append((t, [person(x), (2, "backpack", box(x + 30, 400, 40, 40))]))
    return out


def drop_and_leave(t_drop: float, t_end: float) -> list:
    """Walks in with the bag, puts it down at t_drop, stays 2 s, walks away at 40 px/s."""
    out = carry(0, t_drop, 470 - 40 * t_drop, 40)
    for t in times(t_drop, t_end):
        walk = max(0.0, t - t_drop - 2) * 80
        out.append((t, [person(470 + walk), (2, "backpack", BAG_AT)]))
    return out


def test_carried_through_never_fires() -> None:
    assert run(rule(), carry(2, 30, 0, 30)) == []


def test_dropped_and_left_fires_after_persist_from_when_owner_left() -> None:
    events = run(rule(), drop_and_leave(4, 30))
    assert [e.phase for e in events] == ["start"]
    start = events[0]
    # The owner stands by the bag for 2 s, then needs about a second to be clear of it.
    assert 6.0 <= start.started_ts <= 8.0
    assert start.ts == pytest.approx(start.started_ts + 5, abs=0.15)
    assert start.labels == ("backpack",)


def test_attended_object_never_fires() -> None:
    script = carry(0, 4, 310, 40) + [
        (t, [person(470), (2, "backpack", BAG_AT)]) for t in times(4, 40)
    ]
    assert run(rule(), script) == []


def test_owner_coming_back_before_persist_resets_the_clock() -> None:
    script = drop_and_leave(4, 9) + [
        (t, [person(470), (2, "backpack", BAG_AT)]) for t in times(9, 12)
    ]
    script += [(t, [(2, "backpack", BAG_AT)]) for t in times(12, 30)]
    events = run(rule(), script)
    assert events[0].started_ts == pytest.approx(12.0, abs=0.15)


def test_removal_ends_the_event() -> None:
    script = drop_and_leave(4, 20) + carry(20, 26, 470, 60)
    script += [(t, []) for t in times(26, 30)]
    events = run(rule(), script)
    assert [e.phase for e in events] == ["start", "end"]
    assert events[1].ts == pytest.approx(20.0, abs=0.5)


def test_missed_detections_shorter_than_absence_keep_one_event() -> None:
    script = drop_and_leave(4, 16) + [(t, [person(900)]) for t in times(16, 17.5)]
    script += [(t, [(3, "backpack", BAG_AT)]) for t in times(17.5, 25)]  # new track id too
    events = run(rule(absence_s=2.0), script)
    assert [e.phase for e in events] == ["start"]


def test_objects_there_from_the_start_are_scene() -> None:
    script = [(t, [(5, "bottle", box(200, 400, 20, 50))]) for t in times(0, 30)]
    assert run(rule(), script) == []


def test_jittering_static_object_still_fires() -> None:
    script = drop_and_leave(4, 9)
    for i, t in enumerate(times(9, 20)):
        d = 2.0 * ((i % 3) - 1)
        script.append((t, [(2, "backpack", [v + d for v in BAG_AT])]))
    assert [e.phase for e in run(rule(), script)] == ["start"]


def test_cooldown_suppresses_a_repeat_at_the_same_place() -> None:
    bag = [(t, [(2, "backpack", BAG_AT)]) for t in times(2, 12)]
    gone = [(t, []) for t in times(12, 16)]
    back = [(t, [(4, "backpack", BAG_AT)]) for t in times(16, 30)]
    script = [(t, []) for t in times(0, 2)] + bag + gone + back
    assert [e.phase for e in run(rule(cooldown_s=30), script)] == ["start", "end"]
    assert [e.phase for e in run(rule(cooldown_s=2), script)] == ["start", "end", "start"]


def test_background_blobs_are_evidence_without_a_class() -> None:
    r = rule(evidence=["background"])
    out = []
    for t in times(0, 2):
        out += r.update(frame(t, []))
    for t in times(2, 12):
        out += r.update(frame(t, [], blobs=[BAG_AT]))
    assert [e.phase for e in out] == ["start"]
    assert out[0].labels == ("object",)
    assert out[0].started_ts == pytest.approx(2.0)


def _scene(rng: np.random.Generator) -> np.ndarray:
    texture = rng.integers(60, 200, (60, 80, 3), dtype=np.uint8)
    return cv2.resize(texture, (640, 480), interpolation=cv2.INTER_CUBIC)


def _noisy(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def test_dual_background_finds_a_left_object_and_forgets_it_when_removed() -> None:
    rng = np.random.default_rng(1)
    scene = _scene(rng)
    with_bag = scene.copy()
    cv2.rectangle(with_bag, (300, 300), (360, 360), (20, 20, 200), -1)
    bg = StaticForeground(BackgroundConfig(short_s=1.0, long_s=300))
    found = {}
    for i in range(150):  # 10 fps: empty 3 s, bag 8 s, empty 4 s
        t = i / 10
        img = with_bag if 3 <= t < 11 else scene
        found[round(t, 1)] = bg.update(_noisy(img, rng), t, min_area_px=400)
    assert all(len(found[t]) == 0 for t in found if t < 3.5)  # arriving: not static yet
    blobs = found[9.0]
    assert len(blobs) == 1
    assert np.allclose(blobs[0], [300, 300, 361, 361], atol=6)
    assert len(found[14.9]) == 0  # removed: gone


def test_dual_background_absorbs_a_ghost() -> None:
    """An object in the first frame, then removed, must not leave a static blob behind."""
    rng = np.random.default_rng(2)
    scene = _scene(rng)
    with_bag = scene.copy()
    cv2.rectangle(with_bag, (300, 300), (360, 360), (20, 20, 200), -1)
    bg = StaticForeground(BackgroundConfig(short_s=1.0, long_s=300))
    late = []
    for i in range(120):
        t = i / 10
        img = with_bag if t < 2 else scene
        blobs = bg.update(_noisy(img, rng), t, min_area_px=400)
        if t > 6:
            late.append(len(blobs))
    assert sum(late) == 0


def test_dual_background_ignores_blobs_under_people() -> None:
    rng = np.random.default_rng(3)
    scene = _scene(rng)
    standing = scene.copy()
    cv2.rectangle(standing, (100, 100), (160, 300), (30, 30, 30), -1)
    bg = StaticForeground(BackgroundConfig(short_s=1.0))
    person = np.asarray([[95, 95, 165, 305]], np.float32)
    for i in range(100):
        t = i / 10
        blobs = bg.update(_noisy(standing if t >= 2 else scene, rng), t, 400, person)
    assert len(blobs) == 0
