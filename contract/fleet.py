"""Fleet control on the wire: what an edge says about itself, and how the aggregator gives a
camera a new config or operating mode (protocol version 1; frames in contract/wire.py).

- H (edge -> aggregator, every ``heartbeat_s``): ``Heartbeat``: outbox depth, software
  version, config source and every camera's status (state, fps, last event, the config
  version and mode it runs, the last push it refused).
- C (aggregator -> edge, seq = the push's number): ``ConfigPush``: one camera's desired
  state: its central config (or none: keep the box's own file), the operating mode with its
  rule overrides, and whether that mode is a drill.
- R (edge -> aggregator, same seq): ``ConfigReport``: applied, or refused and rolled back.

The aggregator pushes whenever a heartbeat shows a camera running something other than its
desired state, so a push lost on the way, an edge that was offline and an aggregator replica
that restarted all converge on the next heartbeat; the edge treats a repeated push of what it
runs as a no-op. Every payload is a msgpack map with short keys, checked here: a decode
error (WireError) names the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack

from contract.vocabulary import PEACETIME
from contract.wire import (
    _CONTROL,
    MAX_CAMERA_CHARS,
    MAX_MODE_CHARS,
    MAX_PAYLOAD_BYTES,
    WireError,
)

#: The format of the C, R and H payloads; a change that old peers cannot read bumps it.
FLEET_FORMAT = 1
#: An outbox depth beyond this is not a real queue; it also keeps the value in a signed int64.
MAX_DEPTH = 2**62
#: Cameras one heartbeat reports (keeps a heartbeat well inside MAX_PAYLOAD_BYTES).
MAX_CAMERAS = 64
MAX_ERROR_CHARS = 300
MAX_SOFTWARE_CHARS = 32
#: Config versions and push numbers fit a signed 64-bit column.
MAX_VERSION = 2**63 - 1

ConfigSource = Literal["local", "central"]
CONFIG_SOURCES: tuple[ConfigSource, ...] = ("local", "central")
CameraState = Literal["starting", "online", "offline", "ended"]
CAMERA_STATES: tuple[CameraState, ...] = ("starting", "online", "offline", "ended")


@dataclass(frozen=True)
class Applied:
    """What a camera runs: a central config version (None: the box's own file) under a mode.
    ``mode_rev`` numbers the mode switch that set the mode (0: the default, peacetime)."""

    config_version: int | None = None
    mode: str = PEACETIME
    mode_rev: int = 0


@dataclass(frozen=True)
class CameraStatus:
    camera: str
    state: CameraState
    fps: float
    applied: Applied = field(default_factory=Applied)
    #: Unix time of the camera's last event, None before the first.
    last_event_wall: float | None = None
    #: The last push this camera refused (the reason), until one applies.
    error: str | None = None


@dataclass(frozen=True)
class Heartbeat:
    """An edge's periodic sign of life; ``depth`` is its outbox depth, None when not reported."""

    depth: int | None = None
    software: str | None = None
    source: ConfigSource | None = None
    cameras: tuple[CameraStatus, ...] = ()


@dataclass(frozen=True)
class ModeOverrides:
    """An operating mode as the edge applies it (contract/config/modes.py applies it):
    ``tags`` switch on rules whose ``modes`` name one of them; ``rules`` replaces parameters
    of every rule of an event type, e.g. {"crowding": {"min_count": 4}}."""

    tags: tuple[str, ...] = ()
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigPush:
    camera: str
    applied: Applied
    drill: bool = False
    #: The camera config document (JSON types); None keeps the box's own config file.
    config: dict[str, Any] | None = None
    overrides: ModeOverrides = field(default_factory=ModeOverrides)


@dataclass(frozen=True)
class ConfigReport:
    camera: str
    applied: Applied
    ok: bool
    error: str | None = None


def _pack(body: dict[str, Any], what: str) -> bytes:
    out: bytes = msgpack.packb(body, use_bin_type=True)
    if len(out) > MAX_PAYLOAD_BYTES:
        raise WireError(f"{what} of {len(out)} bytes exceeds the protocol's {MAX_PAYLOAD_BYTES}")
    return out


def _unpack(payload: bytes, what: str, keys: frozenset[str]) -> dict[str, Any]:
    try:
        d = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types for garbage
        raise WireError(f"{what} payload is not msgpack ({type(exc).__name__})") from None
    if not isinstance(d, dict):
        raise WireError(f"{what} payload must be a msgpack map")
    extra = set(d) - keys
    if extra:
        raise WireError(f"{what} payload has unknown keys {sorted(map(str, extra))}")
    if d.get("f", FLEET_FORMAT) != FLEET_FORMAT:
        raise WireError(
            f"{what} format {d.get('f')!r} is not {FLEET_FORMAT}, which this side reads"
        )
    return d


def _text(v: Any, what: str, max_chars: int) -> str:
    if not isinstance(v, str) or not 0 < len(v) <= max_chars or _CONTROL.search(v):
        raise WireError(f"{what} must be text of 1..{max_chars} characters without control ones")
    return v


def _int(v: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise WireError(f"{what} must be an integer from {lo} to {hi}")
    return v


def _opt_error(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or len(v) > MAX_ERROR_CHARS:
        raise WireError(f"error must be text of at most {MAX_ERROR_CHARS} characters")
    return v


def _applied_body(a: Applied) -> dict[str, Any]:
    return {"v": a.config_version, "m": a.mode, "r": a.mode_rev}


def _applied(d: dict[str, Any]) -> Applied:
    v = d.get("v")
    return Applied(
        config_version=None if v is None else _int(v, "config version", 1, MAX_VERSION),
        mode=_text(d.get("m", PEACETIME), "mode", MAX_MODE_CHARS),
        mode_rev=_int(d.get("r", 0), "mode revision", 0, MAX_VERSION),
    )


def short_error(message: str) -> str:
    """An error as a report or heartbeat carries it: one line, at most MAX_ERROR_CHARS."""
    line = " ".join(message.split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


# --- H: heartbeat -------------------------------------------------------------------------


def encode_heartbeat(hb: Heartbeat) -> bytes:
    """msgpack ``{depth, sw, src, cams}`` (only what is set); empty when nothing is."""
    body: dict[str, Any] = {}
    if hb.depth is not None:
        body["depth"] = hb.depth
    if hb.software is not None:
        body["sw"] = hb.software
    if hb.source is not None:
        body["src"] = hb.source
    if hb.cameras:
        body["cams"] = [
            {
                "c": c.camera,
                "s": c.state,
                "fps": round(c.fps, 2),
                **_applied_body(c.applied),
                "le": c.last_event_wall,
                "e": c.error,
            }
            for c in hb.cameras[:MAX_CAMERAS]
        ]
    return _pack(body, "heartbeat") if body else b""


_HB_KEYS = frozenset({"depth", "sw", "src", "cams", "f"})
_CAM_KEYS = frozenset({"c", "s", "fps", "v", "m", "r", "le", "e"})


def _camera_status(c: Any) -> CameraStatus:
    if not isinstance(c, dict) or set(c) - _CAM_KEYS:
        raise WireError(f"heartbeat camera must be a map of the keys {sorted(_CAM_KEYS)}")
    state = c.get("s")
    if state not in CAMERA_STATES:
        raise WireError(f"camera state must be one of {', '.join(CAMERA_STATES)}")
    fps, last = c.get("fps", 0.0), c.get("le")
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 <= fps < 1e4:
        raise WireError("camera fps must be a number from 0 to 10000")
    if last is not None and (
        isinstance(last, bool) or not isinstance(last, int | float) or not math.isfinite(last)
    ):
        raise WireError("camera last event time must be a finite number")
    return CameraStatus(
        camera=_text(c.get("c"), "camera", MAX_CAMERA_CHARS),
        state=state,
        fps=float(fps),
        applied=_applied(c),
        last_event_wall=None if last is None else float(last),
        error=_opt_error(c.get("e")),
    )


def decode_heartbeat(payload: bytes) -> Heartbeat:
    """Validate a heartbeat payload; WireError names what is wrong."""
    if not payload:
        return Heartbeat()
    d = _unpack(payload, "heartbeat", _HB_KEYS)
    depth = d.get("depth")
    if depth is not None:
        depth = _int(depth, "heartbeat depth", 0, MAX_DEPTH)
    software = d.get("sw")
    if software is not None:
        software = _text(software, "software version", MAX_SOFTWARE_CHARS)
    source = d.get("src")
    if source is not None and source not in CONFIG_SOURCES:
        raise WireError(f"config source must be one of {', '.join(CONFIG_SOURCES)}")
    cams = d.get("cams", [])
    if not isinstance(cams, list) or len(cams) > MAX_CAMERAS:
        raise WireError(f"heartbeat cameras must be a list of at most {MAX_CAMERAS}")
    cameras = tuple(_camera_status(c) for c in cams)
    if len({c.camera for c in cameras}) != len(cameras):
        raise WireError("heartbeat names a camera twice")
    return Heartbeat(depth=depth, software=software, source=source, cameras=cameras)


# --- C: config push -----------------------------------------------------------------------


def encode_push(push: ConfigPush) -> bytes:
    """The C payload; WireError when it would not fit one message (a config that large is
    refused where it is saved, so this is a last guard)."""
    body = {
        "f": FLEET_FORMAT,
        "c": push.camera,
        **_applied_body(push.applied),
        "x": push.drill,
        "d": push.config,
        "o": {"t": list(push.overrides.tags), "p": push.overrides.rules},
    }
    return _pack(body, f"config push for camera '{push.camera}'")


_PUSH_KEYS = frozenset({"f", "c", "v", "m", "r", "x", "d", "o"})


def _overrides(o: Any) -> ModeOverrides:
    if not isinstance(o, dict) or set(o) - {"t", "p"}:
        raise WireError("mode overrides must be a map of 't' (tags) and 'p' (rule parameters)")
    tags, rules = o.get("t", []), o.get("p", {})
    if not isinstance(tags, list):
        raise WireError("mode tags must be a list of texts")
    if not isinstance(rules, dict) or not all(isinstance(v, dict) for v in rules.values()):
        raise WireError("mode rule parameters must be a map of event type to a map")
    return ModeOverrides(
        tags=tuple(_text(t, "mode tag", MAX_MODE_CHARS) for t in tags),
        rules={_text(k, "event type", MAX_CAMERA_CHARS): dict(v) for k, v in rules.items()},
    )


def decode_push(payload: bytes) -> ConfigPush:
    d = _unpack(payload, "config push", _PUSH_KEYS)
    config = d.get("d")
    if config is not None and not isinstance(config, dict):
        raise WireError("config push config must be a map or null")
    drill = d.get("x", False)
    if not isinstance(drill, bool):
        raise WireError("config push drill must be true or false")
    return ConfigPush(
        camera=_text(d.get("c"), "camera", MAX_CAMERA_CHARS),
        applied=_applied(d),
        drill=drill,
        config=config,
        overrides=_overrides(d.get("o", {})),
    )


# --- R: report ----------------------------------------------------------------------------


def encode_report(report: ConfigReport) -> bytes:
    body = {
        "f": FLEET_FORMAT,
        "c": report.camera,
        **_applied_body(report.applied),
        "ok": report.ok,
        "e": None if report.error is None else short_error(report.error),
    }
    return _pack(body, "config report")


_REPORT_KEYS = frozenset({"f", "c", "v", "m", "r", "ok", "e"})


def decode_report(payload: bytes) -> ConfigReport:
    """``applied`` is what the push asked for; ``ok`` says whether the camera now runs it."""
    d = _unpack(payload, "config report", _REPORT_KEYS)
    ok = d.get("ok")
    if not isinstance(ok, bool):
        raise WireError("config report ok must be true or false")
    return ConfigReport(
        camera=_text(d.get("c"), "camera", MAX_CAMERA_CHARS),
        applied=_applied(d),
        ok=ok,
        error=_opt_error(d.get("e")),
    )
