"""count / crowding on scripted person tracks."""

from __future__ import annotations

import pytest

from contract.config.rules import CountRuleConfig, expand_preset
from edge.rules.count import CountRule
from tests.rules_helpers import box, ctx, ids, run, times

PERSON = "person"


def crowd(n: int, jitter: float = 0.0, t: float = 0.0) -> list[tuple[int, str, list[float]]]:
    dx = jitter * (1 if int(t * 10) % 2 else -1)
    return [(i + 1, PERSON, box(100 + 60 * i + dx, 300, 40, 120)) for i in range(n)]


def rule(**kw: object) -> CountRule:
    cfg = CountRuleConfig.model_validate(
        expand_preset(
            {"preset": "crowding", "min_count": 5, "min_duration_s": 3, "clear_s": 2, **kw}
        )
    )
    return CountRule(cfg, ctx("crowding"), ids())  # type: ignore[arg-type]


def test_below_threshold_never_fires() -> None:
    assert run(rule(), [(t, crowd(4)) for t in times(0, 30)]) == []


def test_threshold_crossing_fires_after_min_duration() -> None:
    script = [(t, crowd(4)) for t in times(0, 5)] + [(t, crowd(6)) for t in times(5, 12)]
    events = run(rule(), script)
    start = events[0]
    assert start.phase == "start"
    assert start.ts == pytest.approx(8.0)
    assert start.started_ts == pytest.approx(5.0)
    assert start.value == 6
    assert start.unit == "persons"
    assert len(start.boxes) == 6


def test_short_crowd_does_not_fire() -> None:
    script = [(t, crowd(6)) for t in times(0, 2.5)] + [(t, crowd(2)) for t in times(2.5, 10)]
    assert run(rule(), script) == []


def test_missed_detection_gap_keeps_the_clock() -> None:
    script = (
        [(t, crowd(6)) for t in times(0, 2)]
        + [(t, crowd(3)) for t in times(2, 2.5)]  # detections drop for half a second
        + [(t, crowd(6)) for t in times(2.5, 6)]
    )
    events = run(rule(gap_s=1.0), script)
    assert events[0].phase == "start"
    assert events[0].started_ts == pytest.approx(0.0)
    assert events[0].ts == pytest.approx(3.0)


def test_hysteresis_short_dip_does_not_end_long_dip_does() -> None:
    script = (
        [(t, crowd(6)) for t in times(0, 10)]
        + [(t, crowd(2)) for t in times(10, 11.5)]  # under clear_s: still one incident
        + [(t, crowd(6)) for t in times(11.5, 15)]
        + [(t, crowd(2)) for t in times(15, 20)]
    )
    events = run(rule(), script)
    assert [e.phase for e in events] == ["start", "end"]
    assert events[1].ts == pytest.approx(14.9)  # the last moment the crowd was there
    assert events[0].event_id == events[1].event_id


def test_jittering_boxes_do_not_matter() -> None:
    events = run(rule(), [(t, crowd(6, jitter=4, t=t)) for t in times(0, 6)])
    assert [e.phase for e in events] == ["start"]


def test_peak_is_reported_by_update() -> None:
    script = [(t, crowd(6)) for t in times(0, 5)] + [(t, crowd(9)) for t in times(5, 6)]
    events = run(rule(), script)
    assert [e.phase for e in events] == ["start", "update"]
    assert events[1].peak == 9


def test_cooldown_keeps_one_incident_one_event() -> None:
    script = (
        [(t, crowd(6)) for t in times(0, 6)]
        + [(t, crowd(0)) for t in times(6, 10)]
        + [(t, crowd(6)) for t in times(10, 16)]  # back within cooldown_s
        + [(t, crowd(0)) for t in times(16, 20)]
        + [(t, crowd(6)) for t in times(20, 26)]  # after cooldown: a new incident
    )
    events = run(rule(cooldown_s=12), script)
    starts = [e for e in events if e.phase == "start"]
    assert len(starts) == 2
    assert starts[1].started_ts >= 20.0
    assert starts[0].event_id != starts[1].event_id


def test_density_uses_area() -> None:
    r = rule(area_m2=4.0, min_density_per_m2=1.5)
    assert run(r, [(t, crowd(5)) for t in times(0, 5)]) == []  # 1.25 per m2
    events = run(r, [(t, crowd(6)) for t in times(5, 10)])  # 1.5 per m2
    assert events[0].unit == "persons_per_m2"
    assert events[0].value == pytest.approx(1.5)


def test_finish_closes_an_open_incident() -> None:
    events = run(rule(), [(t, crowd(6)) for t in times(0, 5)], finish=True)
    assert [e.phase for e in events] == ["start", "end"]


def _at_2fps(
    t0: float, t1: float, n: int
) -> list[tuple[float, list[tuple[int, str, list[float]]]]]:
    return [(t0 + i / 2, crowd(n)) for i in range(round((t1 - t0) * 2))]


def test_lost_frames_are_no_dip_at_2fps() -> None:
    """Regression (issue 17, scenario crowd_2fps_drops): a 3 s gap without frames in a 2 fps
    stream restarted the crowd's run (gap_s 1), so it fired late from after the gap."""
    script = _at_2fps(0, 4, 3) + _at_2fps(4, 5.5, 7) + _at_2fps(8.5, 20, 7)  # no frames 5.5-8.5
    events = run(rule(gap_s=1.0), script)
    assert events[0].phase == "start"
    assert events[0].started_ts == pytest.approx(4.0)
    assert events[0].ts == pytest.approx(8.5)  # the first frame after min_duration_s


def test_lost_frames_do_not_end_a_crowd() -> None:
    script = _at_2fps(0, 6, 7) + _at_2fps(9, 14, 7)  # no frames 6-9, longer than clear_s
    events = run(rule(clear_s=2.0), script, finish=True)
    assert [e.phase for e in events if e.phase != "update"] == ["start", "end"]
    assert events[-1].ts == pytest.approx(13.5)
