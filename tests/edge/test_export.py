"""`edge models export` in an environment with the export extra (torch, ultralytics).

The edge runtime must not need torch, so the extra lives in its own virtualenv
(.venv-export, made by .ci/run; see README). Without it these tests skip, unless
STREETWATCH_REQUIRE_EXPORT=1 (as in CI) makes that a failure.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.detectors import OnnxDetectorConfig, create_detector
from edge.detectors.catalog import load_manifest
from tests.conftest import REPO

# Slow: exports models with Ultralytics in its own environment.
pytestmark = pytest.mark.slow

EXPORT_PY = Path(
    os.environ.get("STREETWATCH_EXPORT_PYTHON", REPO / ".venv-export" / "bin" / "python")
)


@pytest.fixture(scope="module")
def export_python() -> Path:
    if not EXPORT_PY.exists():
        msg = f"no export environment at {EXPORT_PY} (see README, 'Exporting models')"
        if os.environ.get("STREETWATCH_REQUIRE_EXPORT") == "1":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return EXPORT_PY


def _run(py: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(cwd / "ultralytics-config")}
    return subprocess.run(
        [str(py), "-m", "edge.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


@pytest.mark.parametrize("int8", [False, True])
def test_export_from_model_yaml_loads_in_runtime(
    export_python: Path, tmp_path: Path, image_path: Callable[[str], Path], int8: bool
) -> None:
    """A YOLO11n built from its YAML (no download) exports to an ONNX file the runtime reads."""
    out = tmp_path / ("y11n_int8.onnx" if int8 else "y11n.onnx")
    args = ["models", "export", "yolo11n.yaml", "--imgsz", "320", "--class-list", "coco80"]
    args += ["--out", str(out)]
    res = _run(export_python, *args, *(["--int8"] if int8 else []), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().endswith(str(out))
    det = create_detector(
        OnnxDetectorConfig(model=str(out)), load_manifest(), score_threshold=0.3, nms_iou=0.45
    )
    assert det.input_wh == (320, 320)  # type: ignore[attr-defined]
    assert det.layout.name == "yolov8"  # type: ignore[attr-defined]
    # Class names come from the metadata Ultralytics writes (kept through quantisation).
    assert det.class_names[:3] == ("person", "bicycle", "car")
    assert len(det.class_names) == 80
    det.detect(
        cv2.imread(str(image_path("000000001000.jpg")))
    )  # untrained weights: runs, finds ~nothing


def test_runtime_matches_ultralytics_on_the_same_model(
    export_python: Path, assets: Path, image_path: Callable[[str], Path], tmp_path: Path
) -> None:
    """Our YOLOv8 pre- and post-processing gives Ultralytics' own boxes for the same ONNX file."""
    model = assets / "models" / "yolov8n_int8.onnx"
    image = image_path("000000001532.jpg")
    code = (
        "import json, sys\nfrom ultralytics import YOLO\n"
        f"m = YOLO({str(model)!r}, task='detect')\n"
        f"r = m.predict({str(image)!r}, conf=0.3, verbose=False)[0]\n"
        "print(json.dumps([[int(c), float(s), *map(float, b)] for c, s, b in "
        "zip(r.boxes.cls, r.boxes.conf, r.boxes.xyxy)]))\n"
    )
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path)}
    res = subprocess.run(
        [str(export_python), "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, res.stderr[-2000:]
    import json

    theirs = sorted(json.loads(res.stdout.strip().splitlines()[-1]), key=lambda r: -r[1])
    det = create_detector(
        OnnxDetectorConfig(model="yolov8n_int8"), load_manifest(), score_threshold=0.3, nms_iou=0.7
    )
    ours = det.detect(cv2.imread(str(image)))
    order = np.argsort(-ours.score)
    assert len(ours) == len(theirs)
    for i, ref in zip(order, theirs, strict=True):
        assert int(ours.class_id[i]) == ref[0]
        assert float(ours.score[i]) == pytest.approx(ref[1], abs=1e-3)
        assert np.allclose(ours.xyxy[i], ref[2:], atol=1.0)


def test_batched_export_runs_several_cameras_in_one_call(
    export_python: Path, tmp_path: Path, image_path: Callable[[str], Path]
) -> None:
    """A model exported with --batch 4 takes four frames per run (padded when fewer arrive),
    and each frame's detections equal those of running it alone."""
    out = tmp_path / "y11n_b4.onnx"
    args = ["models", "export", "yolo11n.yaml", "--imgsz", "320", "--batch", "4"]
    res = _run(export_python, *args, "--class-list", "coco80", "--out", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    det = create_detector(
        OnnxDetectorConfig(model=str(out)), load_manifest(), score_threshold=1e-6, nms_iou=0.45
    )
    assert det.batch_size == 4  # type: ignore[attr-defined]
    names = ["000000001000.jpg", "000000001532.jpg", "000000009891.jpg", "000000000724.jpg"]
    frames = [cv2.imread(str(image_path(n))) for n in names]
    for count in (3, 4, 5):  # a padded batch, a full one, a full one plus a padded one
        batch = (frames * 2)[:count]
        together = det.detect_batch(batch)
        alone = [det.detect(f) for f in batch]
        assert len(together) == count
        for a, b in zip(together, alone, strict=True):
            assert len(a) == len(b)
            assert np.allclose(a.xyxy, b.xyxy, atol=1e-3)
            assert np.allclose(a.score, b.score, atol=1e-5)
    # Untrained weights: the comparison only means something if there is something to compare.
    assert sum(len(d) for d in together) > 0
