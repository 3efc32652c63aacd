"""One camera's chain: frame -> detector -> filter -> tracker -> rules -> evidence -> sink.

Replay, evaluation and the worker all run a camera through this package."""
