"""Evidence of an incident: ring buffer, H.264 clips, snapshots, privacy blur, annotation."""
