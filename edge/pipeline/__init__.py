"""Per-frame processing between detector and rules: tracking, zones, motion, background."""
