"""YAML config files validated by pydantic, with errors that name file, line and field."""
