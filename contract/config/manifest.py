"""The model manifest (models/manifest.yaml, package data of `streetwatch_models`): which
models exist, their families, input sizes and class lists.

In the contract because both sides read it: the edge to load and decode a model, the
aggregator to check the class names of a camera config before it reaches any edge.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from contract.config.errors import config_error_from_validation
from contract.config.yaml_source import read_yaml
from contract.errors import ConfigError

#: The package whose data file is the model manifest (models/ in the checkout).
MANIFEST_PACKAGE = "streetwatch_models"
MANIFEST_FILE = "manifest.yaml"


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    family: Literal["yolox", "yolov8"]
    input_wh: tuple[int, int]
    classes: str
    url: str | None = None
    sha256: str | None = None
    licence: str
    notes: str = ""


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelEntry]
    class_lists: dict[str, list[str]]

    def entry_for_file(self, path: Path) -> tuple[str, ModelEntry] | None:
        for name, entry in self.models.items():
            if entry.file == path.name:
                return name, entry
        return None

    def class_names(self, entry: ModelEntry) -> tuple[str, ...]:
        return tuple(self.class_lists[entry.classes])


def load_manifest(path: Path | None = None) -> Manifest:
    """The manifest at path, else the installed one (models/manifest.yaml in a checkout)."""
    if path is not None:
        doc = read_yaml(path)
    else:
        try:
            installed = files(MANIFEST_PACKAGE).joinpath(MANIFEST_FILE)
        except ModuleNotFoundError:
            raise ConfigError(
                f"the model manifest's package {MANIFEST_PACKAGE} is not installed: reinstall "
                "streetwatch (in a checkout: pip install -e '.[dev]')"
            ) from None
        # A real file for any install pip makes; a temporary copy only for zipped packages.
        with as_file(installed) as manifest_file:
            doc = read_yaml(manifest_file)
    try:
        return Manifest.model_validate(doc.data)
    except ValidationError as exc:
        raise config_error_from_validation(doc, exc) from None


def model_class_names(model: str, manifest: Manifest | None = None) -> tuple[str, ...] | None:
    """The class names of a model the manifest names; None for anything else (a path to an
    .onnx file, whose classes only the edge that loads it knows)."""
    manifest = manifest or load_manifest()
    entry = manifest.models.get(model)
    return None if entry is None else manifest.class_names(entry)
