"""Regenerate docs/images/overview.jpg, the README picture, from the shared assets.

.venv/bin/python docs/make_picture.py
"""

from __future__ import annotations

import cv2
import numpy as np

from contract.config.camera import CameraConfig
from edge.camera.chain import CameraChain
from edge.camera.detectors import build_detector
from edge.config import load_camera_config
from edge.detectors.catalog import load_manifest
from edge.evidence.annotate import Annotator
from edge.paths import assets_dir, project_root
from edge.sources import open_source

TILE_WH = (640, 360)


def tile(image: np.ndarray, caption: str) -> np.ndarray:
    h, w = image.shape[:2]
    scale = min(TILE_WH[0] / w, TILE_WH[1] / h)
    resized = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((TILE_WH[1], TILE_WH[0], 3), np.uint8)
    y0, x0 = (TILE_WH[1] - resized.shape[0]) // 2, (TILE_WH[0] - resized.shape[1]) // 2
    canvas[y0 : y0 + resized.shape[0], x0 : x0 + resized.shape[1]] = resized
    # Caption at the bottom: labels of boxes that touch the top edge sit at the top.
    bottom = TILE_WH[1]
    cv2.rectangle(canvas, (0, bottom - 26), (TILE_WH[0], bottom), (0, 0, 0), -1)
    cv2.putText(
        canvas, caption, (8, bottom - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1
    )
    return canvas


def main() -> None:
    manifest = load_manifest()
    tiles = []
    for name, classes, caption in [
        ("000000001000.jpg", ["person"], "edge detect: YOLOX-Nano, persons (COCO val 1000)"),
        ("000000001532.jpg", ["car", "truck", "bus"], "edge detect: vehicles (COCO val 1532)"),
    ]:
        cfg = CameraConfig.model_validate({"id": "pic", "detection": {"classes": classes}})
        det = build_detector(cfg, manifest)
        p = CameraChain(cfg, det, fps=1.0)
        image = cv2.imread(str(assets_dir() / "images" / name))
        boxes = p.filter(det.detect(image))
        tiles.append(tile(Annotator(det.class_names).draw(image, boxes, []), caption))

    cfg = load_camera_config(
        project_root() / "sample_videos" / "one-by-one-person-detection.camera.yaml"
    )
    det = build_detector(cfg, manifest)
    video = assets_dir() / "videos" / "one-by-one-person-detection.mp4"
    wanted = {
        300: "edge replay: person track, zone 'floor' (t=30 s)",
        1270: "edge replay: sixth person, sixth track (t=127 s)",
    }
    with open_source(str(video), realtime=False) as src:
        p = CameraChain(cfg, det, fps=src.fps)
        ann = Annotator(det.class_names)
        for frame in src.frames():
            res = p.process(frame)
            if frame.index in wanted:
                tiles.append(
                    tile(ann.draw(frame.image_bgr, res.tracks, p.zones), wanted[frame.index])
                )
            if frame.index >= max(wanted):
                break
    grid = np.vstack([np.hstack(tiles[0:2]), np.hstack(tiles[2:4])])
    out = project_root() / "docs" / "images" / "overview.jpg"
    cv2.imwrite(str(out), grid, [cv2.IMWRITE_JPEG_QUALITY, 82])
    print(out)


if __name__ == "__main__":
    main()
