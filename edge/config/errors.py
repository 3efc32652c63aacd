"""Turn pydantic validation errors into one line that names file, line and field."""

from __future__ import annotations

from pydantic import ValidationError

from edge.config.yaml_source import Loc, YamlDocument
from edge.errors import ConfigError


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _clean_loc(loc: tuple[str | int, ...]) -> Loc:
    # Discriminated unions add the tag ('onnx') as a path element that is not in the file.
    return tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def config_error_from_validation(doc: YamlDocument, exc: ValidationError) -> ConfigError:
    parts = []
    for err in exc.errors(include_url=False):
        loc = _clean_loc(tuple(err["loc"]))
        msg = err["msg"]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            # Point at the tag itself, which is where the mistake is.
            loc = (*loc, str(err.get("ctx", {}).get("discriminator", "type")).strip("'"))
        if err["type"] == "extra_forbidden":
            msg = f"unknown key '{loc[-1]}'" if loc else "unknown key"
        parts.append(f"{doc.where(loc)}: {_dotted(loc)}: {msg}")
    return ConfigError("; ".join(parts))
