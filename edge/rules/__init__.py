"""Governance rules: pure functions of tracks and timestamps that emit lifecycle events."""
