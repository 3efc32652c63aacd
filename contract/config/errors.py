"""Turn pydantic validation errors into one line that names file, line and field."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from contract.config.yaml_source import Loc, YamlDocument
from contract.errors import ConfigError


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _clean_loc(loc: tuple[str | int, ...], data: Any) -> Loc:
    """Drop path elements pydantic adds that are not in the file (union tags such as 'count').

    The last element is kept even when absent: it names a missing field.
    """
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif not last:
            continue
        out.append(part)
    return tuple(out)


def problems(exc: ValidationError, data: Any) -> list[tuple[Loc, str]]:
    """Each error of ``exc`` as (where in ``data``, what is wrong), in the words a config
    author reads: union tags pydantic adds are dropped, unknown keys are named."""
    out = []
    for err in exc.errors(include_url=False):
        loc = _clean_loc(tuple(err["loc"]), data)
        msg = err["msg"]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            # Point at the tag itself, which is where the mistake is.
            loc = (*loc, str(err.get("ctx", {}).get("discriminator", "type")).strip("'"))
        if err["type"] == "extra_forbidden":
            msg = f"unknown key '{loc[-1]}'" if loc else "unknown key"
        # pydantic prefixes our own validators' messages; they already say what is wrong.
        out.append((loc, msg.removeprefix("Value error, ")))
    return out


def field_path(loc: Loc) -> str:
    """``zones[0].rules[1].min_count``: a field as errors name it."""
    return _dotted(loc)


def config_error_from_validation(doc: YamlDocument, exc: ValidationError) -> ConfigError:
    parts = [f"{doc.where(loc)}: {_dotted(loc)}: {msg}" for loc, msg in problems(exc, doc.data)]
    return ConfigError("; ".join(parts))
