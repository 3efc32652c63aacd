"""Errors a user can act on. The CLI prints their message on one line and exits non-zero;
anything else is a bug and keeps its traceback."""


class StreetwatchError(Exception):
    """Base for user-facing errors; the message must name the thing that is wrong."""


class ConfigError(StreetwatchError):
    """A configuration file is unreadable, malformed or inconsistent."""


class SourceError(StreetwatchError):
    """A video, image or stream cannot be opened, decoded or reached."""


class ModelError(StreetwatchError):
    """A model file is missing, not ONNX, or has an output layout we do not recognise."""
