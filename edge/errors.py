"""The edge's own user-facing errors (the shared base lives in contract.errors)."""

from contract.errors import StreetwatchError


class SourceError(StreetwatchError):
    """A video, image or stream cannot be opened, decoded or reached."""


class ModelError(StreetwatchError):
    """A model file is missing, not ONNX, or has an output layout we do not recognise."""
