"""Load a YAML file into a pydantic model, with errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from contract.config.errors import config_error_from_validation
from contract.config.yaml_source import YamlDocument, read_yaml
from contract.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: Path, model: type[M], what: str) -> tuple[M, YamlDocument]:
    doc = read_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{path}: {what} must be a YAML mapping at the top level")
    try:
        return model.model_validate(doc.data), doc
    except ValidationError as exc:
        raise config_error_from_validation(doc, exc) from None
