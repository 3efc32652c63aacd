"""Verification by camera on the edge (edge/camera/verify.py, edge/worker/verify.py): the real
detector and camera chain run on the generated sample clips at the worker's rate, and a look
at the zone while the car stands at the kerb (or the crowd stands on the square) says still
present; a look after it has gone says cleared. The verifier answers through the control link
with a JPEG snapshot queued for upload, answers a repeated request again, and fails a camera
that is not on the box, offline, or lacks the zone or rule."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from contract.config.modes import apply_mode
from contract.fleet import ModeOverrides
from contract.verify import VerifyAnswer, VerifyRequest
from edge.camera.chain import CameraChain, FrameResult
from edge.camera.detectors import build_detector
from edge.camera.verify import Look, LookError, Outcome
from edge.config import load_camera_config
from edge.control.link import ControlLink
from edge.control.status import FleetStatus
from edge.detectors import Detector
from edge.detectors.catalog import load_manifest
from edge.detectors.detections import Detections
from edge.evidence.media import MediaItem
from edge.sources import open_source
from edge.sources.base import Frame
from edge.worker.verify import Verifier
from tests.conftest import REPO

# Slow: the real detector over frames of whole sample clips.
pytestmark = pytest.mark.slow

SAMPLES = REPO / "sample_videos"
#: The worker's usual detection rate for these clips (10 fps files: every fifth frame).
STEP = 5


def _results(clip: Path, chains: list[CameraChain]) -> Iterator[list[FrameResult]]:
    """Every fifth frame through each chain (one detector call per frame, shared)."""
    detector = chains[0].detector
    with open_source(str(clip), realtime=False) as source:
        for frame in source.frames():
            if frame.index % STEP:
                continue
            raw = detector.detect(frame.image_bgr)
            out = []
            for chain in chains:
                chain.wants_detection(frame)
                out.append(chain.advance(frame, raw))
            yield out


def _request(camera: str, zone: str, event_type: str, look_s: float = 5.0) -> VerifyRequest:
    return VerifyRequest(str(uuid.uuid4()), camera, zone, event_type, look_s)


def _looks(
    clip: Path, chains: list[CameraChain], windows: list[tuple[float, VerifyRequest, int]]
) -> list[Outcome]:
    """Run the clip; each window (start s, request, chain index) is judged after look_s."""
    running: list[tuple[int, Look]] = []
    done: list[tuple[int, Outcome]] = []
    pending = sorted(enumerate(windows), key=lambda w: w[1][0])
    for results in _results(clip, chains):
        ts = results[0].frame.ts_s
        while pending and pending[0][1][0] <= ts:
            i, (_, request, c) = pending.pop(0)
            running.append((i, Look(request, chains[c], ts)))
        for i, look in list(running):
            look.observe(results[windows[i][2]], chains[windows[i][2]])
            if look.due(ts):
                running.remove((i, look))
                done.append((i, look.outcome(ts)))
    assert not pending
    assert not running
    return [o for _, o in sorted(done, key=lambda d: d[0])]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return build_detector(load_camera_config(SAMPLES / "parking.camera.yaml"), load_manifest())


@pytest.fixture
def parking(generated_clips: Path, detector: Detector) -> tuple[Path, CameraChain]:
    """The parking clip and a fresh chain of its sample camera (the samples share a model)."""
    cfg = load_camera_config(SAMPLES / "parking.camera.yaml")
    return generated_clips / "parking.mp4", CameraChain(cfg, detector, fps=10 / STEP)


def test_a_car_at_the_kerb_is_still_present_and_then_cleared(
    parking: tuple[Path, CameraChain],
) -> None:
    clip, chain = parking
    # The SUV stands at the kerb from 5 s to 35 s of the clip (sample_videos/parking.truth.yaml).
    present, gone = _looks(
        clip,
        [chain],
        [
            (10.0, _request("sample-kerb", "kerb", "illegal_parking"), 0),
            (35.5, _request("sample-kerb", "kerb", "illegal_parking", 3.0), 0),
        ],
    )
    seen = present.answer
    assert seen.verdict == "still_present", seen
    assert seen.frames >= 10
    assert seen.present_frames == seen.frames  # the car is found in every frame
    assert (seen.peak, seen.needed, seen.rule, seen.mode) == (
        1.0,
        1.0,
        "illegal_parking",
        "peacetime",
    )
    assert present.sight is not None
    assert len(present.sight.counted) == 1
    x1 = present.sight.counted.xyxy[0][0]
    assert x1 > 0.3 * 640  # the car, not the people beside it
    left = gone.answer
    assert left.verdict == "cleared", left
    assert (left.present_frames, left.peak) == (0, 0.0)
    assert left.frames >= 6
    assert gone.sight is not None
    assert gone.sight.frame.ts_s >= 38.0  # the picture shows the empty kerb, at the end


def test_a_crowd_is_judged_by_the_rule_of_the_current_mode(
    generated_clips: Path, detector: Detector
) -> None:
    cfg = load_camera_config(SAMPLES / "crowding.camera.yaml")
    peace = CameraChain(cfg, detector, fps=10 / STEP)
    # A mode that only counts crowds of thirty: the same twelve people are no crowd there.
    strict_cfg = apply_mode(cfg, ModeOverrides(("calm",), {"crowding": {"min_count": 30}}))
    strict = CameraChain(strict_cfg, detector, fps=10 / STEP, mode="calm")
    # The crowd stands on the square from 5 s to 20 s (crowding.truth.yaml).
    req = _request("sample-square", "square", "crowding")
    crowd, calm, after = _looks(
        generated_clips / "crowding.mp4",
        [peace, strict],
        [(8.0, req, 0), (8.0, req, 1), (21.5, req, 0)],
    )
    assert crowd.answer.verdict == "still_present", crowd.answer
    assert crowd.answer.needed == 8.0
    assert crowd.answer.peak is not None
    assert crowd.answer.peak >= 8
    assert calm.answer.verdict == "cleared", calm.answer
    assert (calm.answer.needed, calm.answer.mode) == (30.0, "calm")
    assert calm.answer.peak == crowd.answer.peak  # the same people, a different threshold
    assert after.answer.verdict == "cleared", after.answer
    assert after.answer.peak is not None
    assert after.answer.peak < 8


def test_a_tampered_view_cannot_verify(parking: tuple[Path, CameraChain]) -> None:
    """A covered camera sees no car: it must answer failed, not cleared (which would let the
    case close)."""
    _, chain = parking
    cfg = chain.cfg
    look = Look(_request(cfg.id, "kerb", "illegal_parking"), chain, 0.0)
    image = np.zeros((480, 640, 3), np.uint8)
    for i in range(6):
        frame = Frame(image, float(i), i)
        none = Detections.empty()
        look.observe(FrameResult(frame, none, none, 0.0, suspended="covered"), chain)
    assert look.due(1.0)
    answer = look.outcome(6.0).answer
    assert answer.verdict == "failed"
    assert "covered" in (answer.reason or "")


def test_an_unknown_zone_or_rule_is_named(parking: tuple[Path, CameraChain]) -> None:
    _, chain = parking
    with pytest.raises(
        LookError, match=r"camera 'sample-kerb' has no zone 'square' \(its zones: kerb\)"
    ):
        Look(_request("sample-kerb", "square", "illegal_parking"), chain, 0.0)
    with pytest.raises(
        LookError,
        match="zone 'kerb' of camera 'sample-kerb' has no litter rule in mode peacetime "
        r"\(its rules: illegal_parking\)",
    ):
        Look(_request("sample-kerb", "kerb", "litter"), chain, 0.0)


@dataclass
class _Feed:
    state: str = "online"
    error: str | None = None


@dataclass
class _Unit:
    """What the verifier reads of the stage's camera unit."""

    feed: _Feed
    chain: CameraChain


def test_the_verifier_answers_with_a_snapshot_and_fails_what_it_cannot_see(
    parking: tuple[Path, CameraChain], tmp_path: Path
) -> None:
    clip, chain = parking
    link = ControlLink(FleetStatus("central", ["sample-kerb"]))
    media: list[MediaItem] = []
    now = [0.0]
    verifier = Verifier("box-7", link, tmp_path / "media", media.append, clock=lambda: now[0])
    units: dict[str, Any] = {
        "sample-kerb": _Unit(_Feed(), chain),
        "dark": _Unit(_Feed("offline", "rtsp timeout"), chain),
    }
    look = _request("sample-kerb", "kerb", "illegal_parking", 2.0)
    for req in (
        look,
        _request("elsewhere", "kerb", "illegal_parking"),
        _request("dark", "kerb", "illegal_parking"),
        _request("sample-kerb", "kerb", "crowding"),
    ):
        assert link.offer_verify(req)
    verifier.start(units)
    failed = link.answers()
    assert [a.verdict for a in failed] == ["failed"] * 3
    assert all(a.snapshot_id is None for a in failed)
    reasons = sorted(str(a.reason) for a in failed)
    assert reasons == [
        "camera 'dark' is offline: rtsp timeout",
        "camera 'elsewhere' is not served by edge box 'box-7'",
        "zone 'kerb' of camera 'sample-kerb' has no crowding rule in mode peacetime (its rules: illegal_parking)",
    ]
    assert verifier.looking == 1
    answers: list[VerifyAnswer] = []
    for (result,) in _results(clip, [chain]):
        now[0] = result.frame.ts_s - 12.0  # the look started at "0", 12 s into the clip
        if now[0] < 0:
            continue
        verifier.observe("sample-kerb", result, chain)
        verifier.observe("dark", result, chain)  # another camera's frames do not count
        verifier.finish_due(units)
        if answers := link.answers():
            break
    (answer,) = answers
    assert (answer.request_id, answer.verdict) == (look.request_id, "still_present")
    assert answer.frames == 5  # 2 s at 2 fps, and the frame at 2 s
    (item,) = media
    assert (item.media_id, item.event_id, item.kind) == (
        answer.snapshot_id,
        look.request_id,
        "snapshot",
    )
    assert item.path.parent == tmp_path / "media" / "sample-kerb"
    image = cv2.imread(str(item.path))
    assert image is not None
    assert image.shape[:2] == (480, 640)
    assert item.path.read_bytes()[:3] == b"\xff\xd8\xff"
    assert item.size == item.path.stat().st_size
    # The aggregator asks again (it missed the answer): the same answer, no second look.
    assert link.offer_verify(look)
    verifier.start(units)
    assert link.answers() == [answer]
    assert verifier.looking == 0
    assert len(media) == 1
