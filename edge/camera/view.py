"""A camera's view as a whole: is it usable? Tamper verdicts (edge/quality/) as events.

A camera that still streams but whose view is covered, turned, defocused, frozen, or drowned
in noise or glare raises one ``camera_tamper`` incident per verdict (its ``stage`` is the
subtype), apart from ``camera_offline``. While a verdict holds, the camera's rules are
suspended: a covered lens must not end every parking incident or start false ones, and the
background model must not learn the cover. The incident says so (and the log does), and it
goes through the same review and case path as any equipment problem.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from contract.config.tamper import TamperConfig
from contract.vocabulary import CAMERA_TAMPER
from edge.quality.tamper import TamperMonitor
from edge.rules.base import IdFactory
from edge.rules.events import Event

log = logging.getLogger(__name__)

#: The zone and rule names tamper incidents carry (they concern the whole picture).
VIEW_ZONE = "camera"
VIEW_RULE = "camera-tamper"


@dataclass
class _Open:
    event_id: str
    subtype: str
    since_ts: float


class ViewWatch:
    """Feeds a camera's frames to its tamper monitor; turns held verdicts into incidents."""

    def __init__(
        self, cfg: TamperConfig, camera: str, new_id: IdFactory, *, mode: str, drill: bool
    ) -> None:
        self.cfg = cfg
        self.camera = camera
        self.mode, self.drill = mode, drill
        self._new_id = new_id
        self._monitor = TamperMonitor(cfg) if cfg.enabled else None
        self._open: _Open | None = None
        self.last_ts_s = 0.0

    @property
    def suspended(self) -> str | None:
        """The subtype that suspends the camera's rules now, None when the view is usable."""
        return None if self._open is None else self._open.subtype

    def stamp(self, mode: str, drill: bool) -> None:
        """Events from now on carry this operating mode."""
        self.mode, self.drill = mode, drill

    def update(self, frame_bgr: npt.NDArray[np.uint8], ts_s: float) -> list[Event]:
        """Judge one frame; the incidents it starts or ends."""
        self.last_ts_s = ts_s
        if self._monitor is None:
            return []
        verdict = self._monitor.update(frame_bgr, ts_s)
        current = self._open.subtype if self._open is not None else None
        if verdict.subtype == current:
            return []
        out = self.close(ts_s)
        if verdict.subtype is not None:
            since = verdict.since_ts_s if verdict.since_ts_s is not None else ts_s
            self._open = _Open(self._new_id(), verdict.subtype, since)
            log.warning(
                "camera %s: view %s since %.1f s, its rules are suspended",
                self.camera,
                verdict.subtype,
                since,
            )
            out.append(self._event("start", ts_s))
        return out

    def close(self, ts_s: float) -> list[Event]:
        """End the open incident (the view is back, or the stream ended)."""
        if self._open is None:
            return []
        ev = self._event("end", ts_s)
        log.warning("camera %s: view no longer %s, rules resumed", self.camera, self._open.subtype)
        self._open = None
        return [ev]

    def _event(self, phase: str, ts_s: float) -> Event:
        assert self._open is not None
        return Event(
            event_id=self._open.event_id,
            type=CAMERA_TAMPER,
            phase="start" if phase == "start" else "end",
            camera=self.camera,
            zone=VIEW_ZONE,
            rule=VIEW_RULE,
            ts=ts_s,
            started_ts=self._open.since_ts,
            value=round(ts_s - self._open.since_ts, 3),
            unit="s",
            severity="high",
            stage=self._open.subtype,
            mode=self.mode,
            drill=self.drill,
        )
