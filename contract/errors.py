"""Errors a user can act on. A command line prints their message on one line and exits
non-zero; anything else is a bug and keeps its traceback."""


class StreetwatchError(Exception):
    """Base for user-facing errors; the message must name the thing that is wrong."""


class ConfigError(StreetwatchError):
    """A configuration file is unreadable, malformed or inconsistent."""
