"""left_object / litter on scripted tracks, and the dual background model on real pixels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from contract.config.rules import LeftObjectRuleConfig, expand_preset
from edge.pipeline.background import StaticBlobs
from edge.rules.base import ZoneFrame
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


def test_a_passer_by_standing_in_front_longer_than_absence_keeps_one_event() -> None:
    """Regression (issue 17): hidden behind someone for longer than absence_s, the bag was
    taken as removed and reported again once they had gone."""
    script = drop_and_leave(3, 20)
    front = (5, "person", box(500, 380, 80, 200))  # stands right in front: the bag is unseen
    script += [(t, [front]) for t in times(20, 30)]
    script += [(t, [(2, "backpack", BAG_AT)]) for t in times(30, 40)]
    events = run(rule(owner_classes=["person"], attend_margin_frac=0.0), script, finish=True)
    lifecycle = [(e.phase, e.ts) for e in events if e.phase != "update"]
    assert [p for p, _ in lifecycle] == ["start", "end"], lifecycle
    assert lifecycle[1][1] == pytest.approx(39.9, abs=0.2)  # still there when it ended


def _with_blob(ts: float, objs: list, blob: list[float], since_s: float) -> ZoneFrame:
    """A scripted frame whose one static blob has differed from the background since
    ``since_s`` (what the background model says)."""
    f = frame(ts, objs)
    xyxy = np.asarray([blob], np.float32)
    return replace(f, static_blobs=StaticBlobs(xyxy, np.asarray([since_s])))


def test_a_blob_recognised_late_starts_when_its_owner_left() -> None:
    """Regression (issue 17, every litter scenario 2-4.6 s late): a blob is reported only once
    it has settled, seconds after the owner walked off, and the incident began then."""
    r = rule(evidence=["background"], owner_classes=["person"])
    out = []
    for t, objs in carry(0, 3, 350, 40):
        out += r.update(frame(t, [o for o in objs if o[1] == "person"]))
    for t in times(3, 12):
        walk = max(0.0, t - 5) * 80  # stands by the bag until 5 s, then walks off
        objs = [person(470 + walk)]
        out += r.update(_with_blob(t, objs, BAG_AT, 3.0) if t >= 8 else frame(t, objs))
    start = next(e for e in out if e.phase == "start")
    assert 5.0 <= start.started_ts <= 6.5  # when they were last beside it, not 8 s


def test_a_blob_around_a_detected_object_is_that_object() -> None:
    """Regression (issue 17, litter_suitcase_rain): the detector lost the bag in the rain and
    the blob around it (bag and its wet shadow, IoU 0.29 with the bag's box) opened a second
    incident for the same bag."""
    r = rule(evidence=["detector", "background"], owner_classes=["person"])
    around = box(500, 410, 80, 70)
    out = run(r, drop_and_leave(4, 16))
    for t in times(16, 40):
        out += r.update(_with_blob(t, [], around, 5.0))
    assert [e.phase for e in out if e.phase != "update"] == ["start"], [
        (e.phase, e.ts, e.labels) for e in out
    ]
