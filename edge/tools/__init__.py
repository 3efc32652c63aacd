"""Developer and operator tools built on the camera chain: replay, eval, export, loadgen, demo."""
