"""dwell / illegal_parking on scripted vehicle tracks."""

from __future__ import annotations

import pytest

from contract.config.rules import DwellRuleConfig, expand_preset
from edge.rules.dwell import DwellRule
from tests.rules_helpers import box, ctx, ids, run, times

CAR = box(500, 300, 160, 90)


def rule(**kw: object) -> DwellRule:
    cfg = DwellRuleConfig.model_validate(
        expand_preset(
            {"preset": "illegal_parking", "dwell_s": 20, "window_s": 3, "absence_s": 5, **kw}
        )
    )
    return DwellRule(cfg, ctx("illegal_parking"), ids())  # type: ignore[arg-type]


def drive(t0: float, t1: float, tid: int = 1, speed: float = 80.0, x0: float = 0.0) -> list:
    return [(t, [(tid, "car", box(x0 + speed * (t - t0), 300, 160, 90))]) for t in times(t0, t1)]


def park(t0: float, t1: float, tid: int = 1, jitter: float = 0.0, at: list[float] = CAR) -> list:
    out = []
    for i, t in enumerate(times(t0, t1)):
        d = jitter * ((i * 7) % 5 - 2) / 2  # deterministic +-jitter px
        out.append((t, [(tid, "car", [at[0] + d, at[1] - d, at[2] + d, at[3] + d])]))
    return out


def test_traffic_passing_never_fires() -> None:
    assert run(rule(), drive(0, 60, speed=20)) == []


def test_brief_queue_never_fires() -> None:
    script = drive(0, 5) + park(5, 15, at=box(400, 300, 160, 90)) + drive(15, 20, x0=400)
    assert run(rule(), script) == []


def test_parking_fires_after_dwell_with_start_when_it_stopped() -> None:
    events = run(rule(), drive(0, 5) + park(5, 40))
    assert [e.phase for e in events][:1] == ["start"]
    start = events[0]
    assert start.started_ts == pytest.approx(5.0, abs=0.2)
    assert start.ts == pytest.approx(25.0, abs=0.3)
    assert start.value >= 20
    assert start.stage == "violation"
    assert start.labels == ("car",)


def test_two_stages_warning_then_violation() -> None:
    events = run(rule(warn_after_s=10), park(0, 30))
    assert [(e.phase, e.stage, e.severity) for e in events] == [
        ("start", "warning", "low"),
        ("update", "violation", "medium"),
    ]
    assert events[0].ts == pytest.approx(10.0, abs=0.2)
    assert events[1].ts == pytest.approx(20.0, abs=0.2)


def test_jittering_box_is_still_parked() -> None:
    events = run(rule(), park(0, 30, jitter=6))
    assert [e.phase for e in events] == ["start"]


def test_missed_detections_do_not_restart_the_clock() -> None:
    script = park(0, 12) + [(t, []) for t in times(12, 16)] + park(16, 30)
    events = run(rule(), script)
    assert [e.phase for e in events] == ["start"]
    assert events[0].started_ts == pytest.approx(0.0, abs=0.1)
    assert events[0].ts == pytest.approx(20.0, abs=0.3)


def test_track_id_switch_mid_dwell_keeps_the_incident() -> None:
    # The tracker loses the car behind a passing bus and finds it again as a new track.
    bus = [(t, [(9, "bus", box(500, 320, 300, 160))]) for t in times(10, 12)]
    script = park(0, 10, tid=1) + bus + park(12, 40, tid=2)
    events = run(rule(), script)
    assert [e.phase for e in events] == ["start"]
    assert events[0].started_ts == pytest.approx(0.0, abs=0.1)
    assert events[0].ts == pytest.approx(20.0, abs=0.3)


def test_leaving_ends_the_event_at_the_last_sighting() -> None:
    script = park(0, 30) + drive(30, 33, x0=500) + [(t, []) for t in times(33, 45)]
    events = run(rule(), script)
    assert [e.phase for e in events] == ["start", "end"]
    assert events[1].event_id == events[0].event_id
    assert 29.9 <= events[1].ts <= 31.0
    assert events[1].value == pytest.approx(events[1].ts - events[0].started_ts, abs=0.01)


def test_cooldown_at_the_same_place() -> None:
    script = (
        park(0, 25, tid=1)
        + [(t, []) for t in times(25, 32)]  # gone: the event ends
        + park(32, 60, tid=2)  # another car at the same bay, soon after
    )
    events = run(rule(cooldown_s=40), script)
    assert [e.phase for e in events] == ["start", "end"]
    events = run(rule(cooldown_s=5), script)
    assert [e.phase for e in events] == ["start", "end", "start"]


def test_other_classes_are_ignored() -> None:
    script = [(t, [(1, "person", box(500, 300, 40, 120))]) for t in times(0, 40)]
    assert run(rule(), script) == []


def test_state_is_freed_when_objects_leave() -> None:
    r = rule()
    run(r, park(0, 5) + [(t, []) for t in times(5, 15)])
    assert r.memory.sites == []
    assert len(r.stillness) == 0


def _bus_in_front(t0: float, t1: float) -> list:
    """The parked car hidden behind a bus standing in front of it (the car is not seen)."""
    bus = box(500, 320, 400, 200)  # larger than the car: not taken for it (IoU < match_iou)
    return [(t, [(9, "bus", bus)]) for t in times(t0, t1)]


def test_a_bus_standing_in_front_longer_than_absence_does_not_split_the_incident() -> None:
    """Regression (issue 17): the car's absence clock ran behind the bus, the incident ended
    after absence_s, and a second one began when the bus left."""
    script = drive(0, 5) + park(5, 30) + _bus_in_front(30, 45) + park(45, 60)
    events = run(rule(), script, finish=True)
    starts = [e for e in events if e.phase == "start"]
    ends = [e for e in events if e.phase == "end"]
    assert len(starts) == 1, [(e.phase, e.ts) for e in events]
    assert starts[0].started_ts == pytest.approx(5.0, abs=0.2)
    assert len(ends) == 1
    assert ends[0].ts == pytest.approx(59.9, abs=0.2)


def test_a_car_that_left_behind_the_bus_ends_when_it_was_last_seen() -> None:
    script = drive(0, 5) + park(5, 30) + _bus_in_front(30, 45) + [(t, []) for t in times(45, 60)]
    events = run(rule(), script)
    assert [e.phase for e in events] == ["start", "end"]
    assert events[1].ts == pytest.approx(29.9, abs=0.2)
    assert events[1].ts < 45  # not when the bus left: when the car was last seen
