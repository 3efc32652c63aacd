"""Applying fleet pushes to a running camera (edge/control/apply.py) with the real sample
config and the real YOLOX-Nano: a new mode or config is swapped in without a new stream,
open incidents end under the old mode first, a push that does not build is rolled back and
not tried again, and a detector change gets its session from the box's cache."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from contract.config.rules import CountRuleConfig
from contract.fleet import Applied, ConfigPush, ModeOverrides
from edge.camera.chain import CameraChain, EventSink
from edge.camera.detectors import DetectorCache
from edge.config import CameraConfig, load_camera_config
from edge.control.apply import CameraControl
from edge.control.status import FleetStatus
from edge.control.store import LastGoodStore
from edge.control.target import Target
from edge.detectors import Detector
from edge.detectors.catalog import load_manifest
from edge.rules.events import Event
from edge.sources.base import Frame
from tests.conftest import REPO

CAMERA = "sample-square"
EMERGENCY = ModeOverrides(("emergency",), {"crowding": {"min_count": 4}})
#: A street photo with a dozen people: a crowd for min_count 4, none for min_count 30.
CROWD_PHOTO = "000000001000.jpg"


def camera_doc(min_count: int, **change: Any) -> dict[str, Any]:
    """The crowding sample as a central config document (no source: that stays local)."""
    doc: dict[str, Any] = yaml.safe_load((REPO / "sample_videos/crowding.camera.yaml").read_text())
    doc["detector"] = {"type": "onnx", "model": "yolox_nano"}
    doc["zones"][0]["rules"][0].update(min_count=min_count, min_duration_s=1, clear_s=1)
    doc.update(change)
    return doc


@dataclasses.dataclass
class Camera:
    """One camera as the detect stage holds it: chain, control and what its sink sent."""

    chain: CameraChain
    control: CameraControl
    status: FleetStatus
    detectors: DetectorCache
    sent: list[Event]
    image: np.ndarray
    ts_s: float = 0.0
    index: int = 0

    def run(self, seconds: float, fps: float = 5.0) -> list[Event]:
        """Feed the crowd photo for ``seconds``; the events of those frames."""
        before = len(self.sent)
        for _ in range(round(seconds * fps)):
            self.chain.process(Frame(self.image, self.ts_s, self.index))
            self.ts_s += 1 / fps
            self.index += 1
        return self.sent[before:]

    def push(self, applied: Applied, **kw: Any) -> Any:
        push = ConfigPush(CAMERA, applied, **kw)
        return self.control.apply(push, self.chain, self.detectors)


@pytest.fixture(scope="module")
def cache(assets: Path) -> DetectorCache:
    return DetectorCache(load_manifest())


def make_camera(
    tmp_path: Path, cache: DetectorCache, assets: Path, min_count: int, source: str
) -> Camera:
    path = tmp_path / "square.camera.yaml"
    path.write_text(yaml.safe_dump(camera_doc(min_count)))
    local = load_camera_config(path)
    status = FleetStatus("central" if source == "central" else "local", [CAMERA])
    target = Target()
    control = CameraControl(
        local,
        target,
        local,
        source="central" if source == "central" else "local",
        status=status,
        store=LastGoodStore(tmp_path / "state"),
    )
    sent: list[Event] = []
    chain = CameraChain(local, cache.get(local), fps=5.0, sinks=[EventSink(sent.extend)])
    image = cv2.imread(str(assets / "images" / CROWD_PHOTO))
    assert image is not None
    return Camera(chain, control, status, cache, sent, image)


@pytest.fixture
def central(tmp_path: Path, cache: DetectorCache, assets: Path) -> Iterator[Camera]:
    cam = make_camera(tmp_path, cache, assets, 30, "central")
    yield cam
    cam.chain.close()


@pytest.fixture
def local_box(tmp_path: Path, cache: DetectorCache, assets: Path) -> Iterator[Camera]:
    cam = make_camera(tmp_path, cache, assets, 4, "local")
    yield cam
    cam.chain.close()


def min_count(chain: CameraChain) -> int:
    rule = chain.cfg.zones[0].rules[0]
    assert isinstance(rule, CountRuleConfig)
    return rule.min_count


def test_a_central_push_applies_config_and_mode_on_the_same_stream(
    central: Camera, tmp_path: Path
) -> None:
    assert central.run(3) == []  # min_count 30: the photo's dozen people are no crowd
    tracker, gate = central.chain.tracker, central.chain.gate
    applied = Applied(config_version=3, mode="emergency", mode_rev=5)
    report = central.push(applied, config=camera_doc(30), overrides=EMERGENCY)
    assert (report.ok, report.error, report.applied) == (True, None, applied)
    assert min_count(central.chain) == 4
    assert central.chain.mode == "emergency"
    # Tracking and motion sections did not change: their state goes on.
    assert central.chain.tracker is tracker
    assert central.chain.gate is gate
    events = central.run(3)
    assert [e.phase for e in events][:1] == ["start"]
    assert {(e.type, e.mode, e.drill) for e in events} == {("crowding", "emergency", False)}
    status = central.status.camera(CAMERA)
    assert (status.applied, status.error) == (applied, None)
    assert status.last_event_wall is None  # the stage records events, not the control
    saved = LastGoodStore(tmp_path / "state").load(CAMERA)
    assert saved is not None
    assert saved.applied == applied
    assert saved.config == camera_doc(30)
    assert saved.overrides == EMERGENCY


def test_open_incidents_end_under_the_old_mode_before_the_new_rules_start(
    local_box: Camera,
) -> None:
    started = local_box.run(3)
    assert [(e.phase, e.mode) for e in started] == [("start", "peacetime")]
    incident = started[0].event_id
    drill = Applied(config_version=None, mode="drill", mode_rev=9)
    report = local_box.push(drill, drill=True, overrides=ModeOverrides(("drill", "emergency")))
    assert report.ok, report.error
    # The closing event went out at the swap, under the mode the incident was raised in.
    closing = local_box.sent[-1]
    assert (closing.event_id, closing.phase, closing.mode, closing.drill) == (
        incident,
        "end",
        "peacetime",
        False,
    )
    after = local_box.run(3)
    assert after
    assert after[0].phase == "start"
    assert after[0].event_id != incident
    assert {(e.mode, e.drill) for e in after} == {("drill", True)}
    # A local box saves no last good: it has its own file.
    assert not (local_box.control._store and local_box.control._store.path(CAMERA).exists())


class CountingCache(DetectorCache):
    def __init__(self, inner: DetectorCache) -> None:
        super().__init__(inner.manifest)
        self.inner, self.calls = inner, 0

    def get(self, cam: CameraConfig) -> Detector:
        self.calls += 1
        return self.inner.get(cam)


def test_a_push_that_does_not_build_is_rolled_back_and_not_retried(central: Camera) -> None:
    good = Applied(config_version=2, mode="peacetime", mode_rev=1)
    assert central.push(good, config=camera_doc(4), overrides=ModeOverrides(("peacetime",))).ok
    rules, cfg, detector = central.chain.rules, central.chain.cfg, central.chain.detector
    bad_doc = camera_doc(4)
    bad_doc["zones"][0]["rules"][0]["classes"] = ["persn"]
    bad = Applied(config_version=3, mode="peacetime", mode_rev=1)
    report = central.push(bad, config=bad_doc, overrides=ModeOverrides(("peacetime",)))
    assert not report.ok
    assert report.error == (
        "zones[0].rules[0].classes: unknown class 'persn' for model yolox_nano "
        "(did you mean 'person'?)"
    )
    # The camera runs what it ran, and says so with the refusal.
    assert central.chain.rules is rules
    assert central.chain.cfg is cfg
    assert central.chain.detector is detector
    status = central.status.camera(CAMERA)
    assert (status.applied, status.error) == (good, report.error)
    assert [e.phase for e in central.run(3)] == ["start"]  # and keeps detecting
    # The same push again is answered without another try.
    counting = CountingCache(central.detectors)
    central.detectors = counting
    again = central.push(bad, config=bad_doc, overrides=ModeOverrides(("peacetime",)))
    assert (again.ok, again.error, counting.calls) == (False, report.error, 0)
    # A different push is tried, and one that works clears the error.
    fixed = Applied(config_version=4, mode="peacetime", mode_rev=1)
    assert central.push(fixed, config=camera_doc(5), overrides=ModeOverrides(("peacetime",))).ok
    assert counting.calls == 1
    assert central.status.camera(CAMERA).error is None
    assert min_count(central.chain) == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"zones": [{**camera_doc(4)["zones"][0],
                        "polygon": [[0, 0], [1, 1], [1, 0], [0, 0.5]]}]},
            r"^zones\[0\]\.polygon: .*polygon crosses itself: edge 0-1 crosses edge 2-3",
        ),
        ({"id": "other-cam"}, "^id: the config is for camera 'other-cam', not 'sample-square'"),
        ({"source": {"uri": "rtsp://x/y"}}, "^source: a central config has no source"),
        ({"detector": {"type": "onnx", "model": "no_such_model"}}, "no_such_model"),
    ],
)  # fmt: skip
def test_bad_central_configs_are_refused_naming_the_field(
    central: Camera, change: dict[str, Any], message: str
) -> None:
    rules = central.chain.rules
    report = central.push(Applied(7, "peacetime", 0), config=camera_doc(4, **change))
    assert not report.ok
    assert report.error is not None
    assert re.search(message, report.error), report.error
    assert central.chain.rules is rules


def test_mode_parameters_a_rule_does_not_take_are_refused(central: Camera) -> None:
    overrides = ModeOverrides(("emergency",), {"crowding": {"min_count": 0}})
    report = central.push(Applied(None, "emergency", 3), overrides=overrides)
    assert not report.ok
    assert report.error is not None
    assert "zones[0].rules[0].min_count" in report.error
    assert central.chain.mode == "peacetime"
    assert min_count(central.chain) == 30


def test_a_repeat_of_what_runs_is_a_no_op(central: Camera) -> None:
    applied = Applied(None, "alert", 2)
    assert central.push(applied, overrides=ModeOverrides(("alert",))).ok
    rules = central.chain.rules
    assert central.push(applied, overrides=ModeOverrides(("alert",))).ok
    assert central.chain.rules is rules


def test_a_local_box_refuses_a_central_config(local_box: Camera) -> None:
    report = local_box.push(Applied(5, "peacetime", 0), config=camera_doc(4))
    assert not report.ok
    assert report.error is not None
    assert report.error.startswith("config: this box's fleet source is local")
    # A mode alone is what a local box takes.
    assert local_box.push(Applied(None, "emergency", 1), overrides=EMERGENCY).ok
    assert min_count(local_box.chain) == 4
    assert local_box.chain.mode == "emergency"


def test_a_detector_change_gets_its_session_from_the_cache(central: Camera, tmp_path: Path) -> None:
    other_sent: list[Event] = []
    other = CameraChain(
        central.chain.cfg, central.chain.detector, 5.0, sinks=[EventSink(other_sent.extend)]
    )
    shared = central.chain.detector
    two_threads = {"type": "onnx", "model": "yolox_nano", "threads": 2}
    applied = Applied(config_version=8, mode="peacetime", mode_rev=0)
    assert central.push(applied, config=camera_doc(4, detector=two_threads)).ok
    moved = central.chain.detector
    assert moved is not shared
    assert moved.model_name == "yolox_nano"
    # Another camera asking for the same detector section shares the new session.
    same = central.detectors.get(central.chain.cfg)
    assert same is moved
    # The session nobody uses any more is dropped; the used ones stay.
    central.detectors.keep([moved, other.detector])
    assert central.detectors.get(other.cfg) is shared
    central.detectors.keep([moved])
    assert central.detectors.get(other.cfg) is not shared
    assert [e.phase for e in central.run(3)] == ["start"]
    other.close()
