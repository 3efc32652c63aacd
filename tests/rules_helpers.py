"""Scripted scenes for rule tests: tracks as (id, class, xyxy) per timestamp."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np

from edge.detectors.detections import Detections
from edge.pipeline.background import StaticBlobs
from edge.rules.base import Rule, ZoneFrame
from edge.rules.events import Event, RuleContext

CLASSES = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "bus",
    "truck",
    "bottle",
    "backpack",
    "cup",
    "handbag",
    "suitcase",
)
FPS = 10.0
WH = (1000, 600)
Obj = tuple[int, str, list[float]]


def ctx(type_: str) -> RuleContext:
    return RuleContext("cam", "zone", type_, type_, CLASSES)


def ids() -> object:
    counter = itertools.count(1)
    return lambda: f"ev-{next(counter)}"


def frame(ts: float, objs: Iterable[Obj], blobs: list[list[float]] | None = None) -> ZoneFrame:
    objs = list(objs)
    det = (
        Detections.from_arrays(
            [o[2] for o in objs],
            [0.9] * len(objs),
            [CLASSES.index(o[1]) for o in objs],
            tracker_id=[o[0] for o in objs],
        )
        if objs
        else Detections.empty()
    )
    b = np.asarray(blobs or [], np.float32).reshape(-1, 4)
    # A scripted blob has been there since the frame it is first given in (no history).
    static = StaticBlobs(b, np.full(len(b), ts))
    return ZoneFrame(ts_s=ts, frame_wh=WH, in_zone=det, everywhere=det, static_blobs=static)


def run(rule: Rule, script: Iterable[tuple[float, list[Obj]]], finish: bool = False) -> list[Event]:
    out: list[Event] = []
    last = 0.0
    for ts, objs in script:
        out += rule.update(frame(ts, objs))
        last = ts
    if finish:
        out += rule.finish(last)
    return out


def times(start_s: float, end_s: float) -> list[float]:
    n = round((end_s - start_s) * FPS)
    return [round(start_s + i / FPS, 3) for i in range(n)]


def box(cx: float, cy: float, w: float, h: float) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def phases(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.event_id, e.phase) for e in events]
