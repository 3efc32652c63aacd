"""The event vocabulary both sides share: lifecycle phases, severities and the standard
event types. Each exists here once; the wire codec, the rules, the database checks and the
review UI (through the API) all read them from this module.

Event types are open-ended on the wire (a rule may name its own type), but the standard
ones below are what the presets emit, what the aggregator has default case categories for,
and what the UI offers as filters.
"""

from __future__ import annotations

from typing import Literal, get_args

Phase = Literal["start", "update", "end"]
Severity = Literal["low", "medium", "high"]

#: In wire order: a phase and a severity travel as their index in these tuples.
PHASES: tuple[Phase, ...] = get_args(Phase)
SEVERITIES: tuple[Severity, ...] = get_args(Severity)

CROWDING = "crowding"
ILLEGAL_PARKING = "illegal_parking"
NONMOTOR_PARKING = "nonmotor_parking"
STREET_VENDING = "street_vending"
LITTER = "litter"
#: Raised by an edge box about its own camera going dark (edge/worker/camera.py).
CAMERA_OFFLINE = "camera_offline"
#: Raised by an edge box when its camera still streams but its view is unusable (covered,
#: turned, defocused, ...; edge/quality/). The event's ``stage`` is one of TAMPER_SUBTYPES;
#: the camera's rules are suspended until it ends.
CAMERA_TAMPER = "camera_tamper"
COVERED = "covered"
TURNED = "turned"
DEFOCUSED = "defocused"
FROZEN = "frozen"
NOISY = "noisy"
GLARE = "glare"
TAMPER_SUBTYPES: tuple[str, ...] = (COVERED, TURNED, DEFOCUSED, FROZEN, NOISY, GLARE)

EVENT_TYPES: tuple[str, ...] = (
    CROWDING,
    ILLEGAL_PARKING,
    NONMOTOR_PARKING,
    STREET_VENDING,
    LITTER,
    CAMERA_OFFLINE,
    CAMERA_TAMPER,
)

#: Operating modes every city has (contract/config/modes.py; a city may define more in the
#: aggregator config). Events carry the mode they were raised under.
PEACETIME = "peacetime"
ALERT = "alert"
EMERGENCY = "emergency"
#: The drill variant of emergency: rehearsed with real cameras, kept out of real figures.
DRILL = "drill"
MODES: tuple[str, ...] = (PEACETIME, ALERT, EMERGENCY, DRILL)
