"""Build the generated sample clips from the shared street photos (never committed).

A photo held still reads as a static camera; each frame gets a small random camera shake
and sensor noise so that detections jitter as they do on a real camera. Before and after
the scene of interest, the clip shows an empty street (000000008899.jpg, no people or
vehicles in it), so an incident has a clear start and end.

    .venv/bin/python sample_videos/make_clips.py OUT_DIR [--only crowding]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from edge.paths import assets_dir

FPS = 10.0
WH = (640, 480)
EMPTY = "000000008899.jpg"
JITTER_PX = 2.0
NOISE_SIGMA = 3.0

#: name -> [(photo, seconds), ...]; the truth files in this folder follow these times.
CLIPS: dict[str, list[tuple[str, float]]] = {
    # 12+ people (children's tennis group) from 5 s to 20 s.
    "crowding": [(EMPTY, 5.0), ("000000001000.jpg", 15.0), (EMPTY, 8.0)],
    # A white SUV at an airport kerb from 5 s to 35 s.
    "parking": [(EMPTY, 5.0), ("000000009891.jpg", 30.0), (EMPTY, 5.0)],
}


def _scene(name: str) -> npt.NDArray[np.uint8]:
    path = assets_dir() / "images" / name
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"{path}: cannot read image")
    h, w = image.shape[:2]
    scale = max(WH[0] / w, WH[1] / h)
    image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    y0 = (image.shape[0] - WH[1]) // 2
    x0 = (image.shape[1] - WH[0]) // 2
    return np.ascontiguousarray(image[y0 : y0 + WH[1], x0 : x0 + WH[0]])


def make_clip(name: str, out_dir: Path, seed: int = 7) -> Path:
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, WH)
    if not writer.isOpened():
        raise SystemExit(f"{path}: cannot write video")
    for photo, seconds in CLIPS[name]:
        scene = _scene(photo).astype(np.float32)
        for _ in range(round(seconds * FPS)):
            dx, dy = rng.uniform(-JITTER_PX, JITTER_PX, 2)
            shake = np.float32([[1, 0, dx], [0, 1, dy]])
            frame = cv2.warpAffine(scene, shake, WH, borderMode=cv2.BORDER_REFLECT)
            frame += rng.normal(0, NOISE_SIGMA, frame.shape).astype(np.float32)
            writer.write(np.clip(frame, 0, 255).astype(np.uint8))
    writer.release()
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--only", choices=sorted(CLIPS), default=None)
    args = ap.parse_args()
    for name in [args.only] if args.only else sorted(CLIPS):
        print(make_clip(name, args.out_dir))


if __name__ == "__main__":
    main()
