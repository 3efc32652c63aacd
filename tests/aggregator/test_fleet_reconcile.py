"""Which pushes a heartbeat calls for (aggregator/fleet/reconcile.py): pure logic."""

from __future__ import annotations

from typing import Any

from aggregator.fleet.modes import Desired
from aggregator.fleet.reconcile import MAX_REFUSED_PER_CAMERA, Outlook, Reconciler
from contract.fleet import Applied, CameraStatus, ConfigReport, Heartbeat, ModeOverrides

RETRY_S = 3.0
DOC: dict[str, Any] = {"id": "cam-1", "zones": []}
EMERGENCY = ModeOverrides(tags=("emergency",), rules={"crowding": {"min_count": 4}})


def _desired(camera: str = "cam-1", version: int | None = 2, rev: int = 7) -> Desired:
    return Desired(
        camera=camera,
        config_version=version,
        config=None if version is None else {**DOC, "id": camera},
        mode="emergency",
        mode_rev=rev,
        drill=False,
        overrides=EMERGENCY,
    )


def _hb(*cams: tuple[str, Applied], source: Any = "central", software: str = "0.9.0") -> Heartbeat:
    return Heartbeat(
        depth=0,
        software=software,
        source=source,
        cameras=tuple(CameraStatus(camera=c, state="online", fps=5.0, applied=a) for c, a in cams),
    )


def _outlook(*desired: Desired, **kw: Any) -> Outlook:
    return Outlook(desired={d.camera: d for d in desired}, **kw)


OLD = Applied(config_version=1, mode="peacetime", mode_rev=0)
NEW = Applied(config_version=2, mode="emergency", mode_rev=7)


def test_a_camera_behind_its_desired_state_gets_it() -> None:
    r = Reconciler(RETRY_S)
    pushes = r.on_heartbeat("box-a", _hb(("cam-1", OLD)), _outlook(_desired()), 100.0)
    assert len(pushes) == 1
    p = pushes[0]
    assert (p.camera, p.applied, p.drill) == ("cam-1", NEW, False)
    assert p.config == {"id": "cam-1", "zones": []}
    assert p.overrides == EMERGENCY


def test_a_camera_in_its_desired_state_gets_nothing() -> None:
    r = Reconciler(RETRY_S)
    assert r.on_heartbeat("box-a", _hb(("cam-1", NEW)), _outlook(_desired()), 100.0) == []
    # Nor does a camera whose desired state is not known yet.
    assert r.on_heartbeat("box-a", _hb(("cam-2", OLD)), _outlook(_desired()), 100.0) == []


def test_a_push_is_resent_only_after_the_retry_time() -> None:
    r = Reconciler(RETRY_S)
    hb, outlook = _hb(("cam-1", OLD)), _outlook(_desired())
    assert len(r.on_heartbeat("box-a", hb, outlook, 100.0)) == 1
    assert r.on_heartbeat("box-a", hb, outlook, 100.0 + RETRY_S - 0.01) == []
    assert len(r.on_heartbeat("box-a", hb, outlook, 100.0 + RETRY_S)) == 1
    # A new desired state goes out at once, whatever was sent a moment ago.
    newer = _outlook(_desired(rev=8))
    (p,) = r.on_heartbeat("box-a", hb, newer, 100.0 + RETRY_S + 0.1)
    assert p.applied.mode_rev == 8


def test_a_refused_state_is_not_pushed_again_but_a_newer_one_is() -> None:
    r = Reconciler(RETRY_S)
    hb, outlook = _hb(("cam-1", OLD)), _outlook(_desired())
    r.on_heartbeat("box-a", hb, outlook, 100.0)
    assert r.on_report("box-a", ConfigReport("cam-1", NEW, ok=False, error="bad class"))
    assert r.on_heartbeat("box-a", hb, outlook, 200.0) == []
    (p,) = r.on_heartbeat("box-a", hb, _outlook(_desired(version=3)), 200.0)
    assert p.applied.config_version == 3
    # Another edge reporting the same camera state is another matter.
    assert len(r.on_heartbeat("box-b", hb, outlook, 200.0)) == 1


def test_a_refusal_recorded_in_the_database_holds_too() -> None:
    r = Reconciler(RETRY_S)
    outlook = _outlook(_desired(), refused={("box-a", "cam-1"): (2, 7)})
    assert r.on_heartbeat("box-a", _hb(("cam-1", OLD)), outlook, 100.0) == []
    other = _outlook(_desired(), refused={("box-a", "cam-1"): (2, 6)})
    assert len(r.on_heartbeat("box-a", _hb(("cam-1", OLD)), other, 100.0)) == 1


def test_an_ok_report_clears_the_push_in_flight() -> None:
    r = Reconciler(RETRY_S)
    hb, outlook = _hb(("cam-1", OLD)), _outlook(_desired())
    r.on_heartbeat("box-a", hb, outlook, 100.0)
    assert r.on_report("box-a", ConfigReport("cam-1", NEW, ok=True))
    assert r.in_flight() == {}
    # A camera that goes back (say the box restarted from an old file) is pushed again.
    assert len(r.on_heartbeat("box-a", hb, outlook, 100.5)) == 1


def test_reports_that_answer_no_push_are_ignored() -> None:
    r = Reconciler(RETRY_S)
    assert not r.on_report("box-a", ConfigReport("cam-1", NEW, ok=False, error="x"))
    r.on_heartbeat("box-a", _hb(("cam-1", OLD)), _outlook(_desired()), 100.0)
    other = Applied(config_version=1, mode="emergency", mode_rev=7)
    assert not r.on_report("box-a", ConfigReport("cam-1", other, ok=False, error="x"))
    assert not r.on_report("box-b", ConfigReport("cam-1", NEW, ok=False, error="x"))
    assert list(r.in_flight()) == [("box-a", "cam-1")]
    # Not recorded as refused: the next due push goes out.
    assert len(r.on_heartbeat("box-a", _hb(("cam-1", OLD)), _outlook(_desired()), 200.0)) == 1


def test_a_camera_bound_to_another_edge_gets_nothing() -> None:
    r = Reconciler(RETRY_S)
    outlook = _outlook(
        _desired("cam-1"), _desired("cam-2"), bindings={"cam-1": "box-b", "cam-2": "box-a"}
    )
    hb = _hb(("cam-1", OLD), ("cam-2", OLD), ("cam-3", OLD))
    pushes = r.on_heartbeat("box-a", hb, outlook, 100.0)
    assert [p.camera for p in pushes] == ["cam-2"]


def test_an_edge_on_local_configs_gets_the_mode_only() -> None:
    r = Reconciler(RETRY_S)
    for source in ("local", None):
        (p,) = r.on_heartbeat(
            f"box-{source}", _hb(("cam-1", OLD), source=source), _outlook(_desired()), 100.0
        )
        assert p.config is None
        assert p.applied == Applied(config_version=None, mode="emergency", mode_rev=7)
        assert p.overrides == EMERGENCY
    # Once it runs that mode, it is in sync: its config version is its own business.
    in_mode = Applied(config_version=None, mode="emergency", mode_rev=7)
    assert (
        r.on_heartbeat(
            "box-local", _hb(("cam-1", in_mode), source="local"), _outlook(_desired()), 200.0
        )
        == []
    )


def test_a_central_edge_with_no_central_config_keeps_its_file() -> None:
    r = Reconciler(RETRY_S)
    (p,) = r.on_heartbeat("box-a", _hb(("cam-1", OLD)), _outlook(_desired(version=None)), 1.0)
    assert p.config is None
    assert p.applied.config_version is None


def test_what_is_kept_follows_the_latest_heartbeat() -> None:
    r = Reconciler(RETRY_S)
    outlook = _outlook(_desired("cam-1"), _desired("cam-2"))
    r.on_heartbeat("box-a", _hb(("cam-1", OLD), ("cam-2", OLD)), outlook, 100.0)
    r.on_report("box-a", ConfigReport("cam-2", NEW, ok=False, error="x"))
    r.on_heartbeat("box-a", _hb(("cam-1", OLD)), outlook, 100.1)
    assert list(r.in_flight()) == [("box-a", "cam-1")]
    # cam-2 came back: its refusal was forgotten with it (fleet_cameras still has it).
    (p,) = r.on_heartbeat("box-a", _hb(("cam-2", OLD)), outlook, 100.2)
    assert p.camera == "cam-2"


def test_refusals_kept_per_camera_are_bounded() -> None:
    r = Reconciler(RETRY_S)
    hb = _hb(("cam-1", OLD))
    for rev in range(1, MAX_REFUSED_PER_CAMERA + 2):
        (p,) = r.on_heartbeat("box-a", hb, _outlook(_desired(rev=rev)), float(rev))
        assert r.on_report("box-a", ConfigReport("cam-1", p.applied, ok=False, error="x"))
    # The oldest refusal fell out; the latest ones hold.
    assert len(r.on_heartbeat("box-a", hb, _outlook(_desired(rev=1)), 100.0)) == 1
    assert r.on_heartbeat("box-a", hb, _outlook(_desired(rev=2)), 100.0) == []
