"""Streetwatch aggregator: central ingest, storage and (later) the review UI."""

__version__ = "0.1.0"
