"""Operating modes applied to a camera config: the edge runs ``apply_mode(base, overrides)``;
the aggregator checks a mode's parameters with ``check_rule_parameters`` before it pushes one.

A mode switches on the rules that name it (``modes: [emergency]``) or one of its tags (a drill
of an emergency carries the tag ``emergency`` too, so it runs the same rules), switches off
the rules that name only other modes, and replaces rule parameters by event type:
``{"crowding": {"min_count": 4}}`` sets min_count on every crowding rule of the camera.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from contract.config.camera import CameraConfig
from contract.config.errors import field_path, problems
from contract.config.rules import PRESETS, RuleConfig
from contract.errors import ConfigError
from contract.fleet import ModeOverrides

_RULE = TypeAdapter[Any](RuleConfig)
#: Keys a mode may not change: they say what a rule is, not how sensitive it is.
_IDENTITY = frozenset({"kind", "type", "name", "preset", "modes"})


def _runs(rule_modes: list[str] | None, tags: tuple[str, ...]) -> bool:
    return rule_modes is None or bool(set(rule_modes) & set(tags))


def apply_mode(base: CameraConfig, overrides: ModeOverrides) -> CameraConfig:
    """The camera config a mode makes of ``base``; ConfigError names the rule and parameter
    a mode cannot set (the edge then keeps what it runs)."""
    doc = base.model_dump(mode="json")
    for zone in doc["zones"]:
        kept = []
        for rule in zone["rules"]:
            if not _runs(rule.get("modes"), overrides.tags):
                continue
            params = overrides.rules.get(rule["type"], {})
            kept.append({**rule, **params})
        zone["rules"] = kept
    try:
        out = CameraConfig.model_validate(doc)
    except ValidationError as exc:
        loc, msg = problems(exc, doc)[0]
        raise ConfigError(
            f"camera '{base.id}': mode parameters do not fit its rules: {field_path(loc)}: {msg}"
        ) from None
    out._doc = base._doc
    return out


def check_rule_parameters(event_type: str, params: dict[str, Any]) -> None:
    """Refuse (ConfigError naming it) a parameter the rules of ``event_type`` do not have or a
    value they do not accept. Types without a preset are checked against every rule kind's
    parameters at the edge only."""
    bad = sorted(set(params) & _IDENTITY)
    if bad:
        raise ConfigError(f"mode rules.{event_type}: {', '.join(bad)} cannot be changed by a mode")
    preset = PRESETS.get(event_type)
    if preset is None:
        return
    try:
        _RULE.validate_python({**preset, **params})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"][1:]) or "?"
        raise ConfigError(f"mode rules.{event_type}.{loc}: {err['msg']}") from None
