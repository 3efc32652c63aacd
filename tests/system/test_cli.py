"""The CLI as a user meets it: real child processes, real models and files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge.cli.main import cli
from tests.conftest import REPO, run_edge
from tests.deploy import free_port

# Slow: each test runs the `edge` command in a child process.
pytestmark = pytest.mark.slow

SAMPLE_CFG = REPO / "sample_videos" / "one-by-one-person-detection.camera.yaml"


def _onnx_with_output(path: Path, out_shape: list[int]) -> Path:
    """A valid ONNX model whose output matches no detector layout (reshape of the input)."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [len(out_shape)], out_shape)
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["images", "shape"], ["output"])],
        "odd",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
        initializer=[shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _assert_user_error(res: object, *patterns: str) -> None:
    assert res.returncode == 1, (res.returncode, res.stderr)  # type: ignore[attr-defined]
    err = res.stderr.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("edge: error:")]
    assert len(lines) == 1, err
    for p in patterns:
        assert p in lines[0], lines[0]


def test_detect_json(image_path: Callable[[str], Path]) -> None:
    res = run_edge("detect", str(image_path("000000001000.jpg")), "--json")
    assert res.returncode == 0, res.stderr
    dets = json.loads(res.stdout)
    people = [d for d in dets if d["label"] == "person"]
    assert len(people) >= 10
    assert all({"label", "score", "xyxy"} <= d.keys() and d["score"] >= 0.3 for d in dets)


def test_detect_first_frame_of_video_with_other_model(
    video_path: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "boxes.jpg"
    res = run_edge(
        "detect",
        str(video_path("one-by-one-person-detection.mp4")),
        "--model",
        "yolov8n_int8",
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("0 detections (yolov8n_int8, 768x432)")  # empty room at t=0
    assert cv2.imread(str(out)).shape == (432, 768, 3)


def test_replay_writes_annotated_video_and_tracks(
    video_path: Callable[[str], Path], tmp_path: Path
) -> None:
    video, tracks = tmp_path / "a.mp4", tmp_path / "t.jsonl"
    res = run_edge(
        "replay",
        str(video_path("people-detection.gif")),
        "--config",
        str(SAMPLE_CFG),
        "--fast",
        "--annotated-out",
        str(video),
        "--tracks-out",
        str(tracks),
    )
    assert res.returncode == 0, res.stderr
    assert "23 frames" in res.stderr  # summary
    assert "replay:" in res.stderr  # progress bar
    lines = [json.loads(x) for x in tracks.read_text().splitlines()]
    assert [r["frame"] for r in lines] == list(range(23))
    assert any(r["tracks"] for r in lines)
    cap = cv2.VideoCapture(str(video))
    n = 0
    diff = 0.0
    src = cv2.VideoCapture(str(video_path("people-detection.gif")))
    while True:
        ok, f = cap.read()
        ok2, g = src.read()
        if not ok or not ok2:
            break
        n += 1
        diff += float(np.abs(f.astype(int) - g.astype(int)).mean())
    assert n == 23
    assert diff / n > 1.0  # something (zones, boxes) was drawn on the frames


def _commands(group: click.Group, prefix: list[str]) -> list[tuple[list[str], click.Command]]:
    out: list[tuple[list[str], click.Command]] = [(prefix, group)]
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += _commands(cmd, [*prefix, name])
        else:
            out.append(([*prefix, name], cmd))
    return out


@pytest.mark.parametrize(
    ("path", "cmd"), _commands(cli, []), ids=lambda v: " ".join(v) if isinstance(v, list) else ""
)
def test_help_explains_every_option(path: list[str], cmd: click.Command) -> None:
    assert cmd.help, f"edge {' '.join(path)} has no description"
    res = run_edge(*path, "--help")
    assert res.returncode == 0
    assert f"Usage: edge {' '.join(path)}".strip() in res.stdout
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.help, f"edge {' '.join(path)} {param.opts[0]} has no help text"
            assert param.opts[-1] in res.stdout


BAD_CASES = {
    "missing file": lambda tmp, v: (["detect", str(tmp / "nope.jpg")], ["nope.jpg", "not found"]),
    "text renamed mp4": lambda tmp, v: (
        [
            "replay",
            str(_write(tmp / "text.mp4", b"hello\n" * 100)),
            "-c",
            str(SAMPLE_CFG),
            "--fast",
            "-q",
        ],
        ["text.mp4", "cannot open as video"],
    ),
    "truncated video": lambda tmp, v: (
        [
            "replay",
            str(_write(tmp / "cut.mp4", v("car-detection.mp4").read_bytes()[:1_000_000])),
            "-c",
            str(SAMPLE_CFG),
            "--fast",
            "-q",
        ],
        ["cut.mp4", "truncated or corrupt"],
    ),
    "invalid yaml": lambda tmp, v: (
        [
            "replay",
            str(v("people-detection.gif")),
            "-c",
            str(_write(tmp / "c.yaml", b"id: a\nzones: [\n")),
        ],
        ["c.yaml:3:1", "invalid YAML"],
    ),
    "unknown config key": lambda tmp, v: (
        [
            "replay",
            str(v("people-detection.gif")),
            "-c",
            str(_write(tmp / "c.yaml", b"id: a\ntracker: {}\n")),
        ],
        ["c.yaml:2", "unknown key 'tracker'"],
    ),
    "polygon of two points": lambda tmp, v: (
        [
            "replay",
            str(v("people-detection.gif")),
            "-c",
            str(
                _write(
                    tmp / "c.yaml",
                    b"id: a\nzones:\n- {name: z, units: pixels, polygon: [[0, 0], [5, 5]]}\n",
                )
            ),
        ],
        ["c.yaml:3", "at least 3 points"],
    ),
    "unknown class": lambda tmp, v: (
        [
            "replay",
            str(v("people-detection.gif")),
            "-c",
            str(_write(tmp / "c.yaml", b"id: a\ndetection:\n  classes: [person, pedestrian]\n")),
        ],
        ["c.yaml:3", "unknown class 'pedestrian'"],
    ),
    "non-onnx model": lambda tmp, v: (
        [
            "detect",
            str(v("people-detection.gif")),
            "--model",
            str(_write(tmp / "fake.onnx", b"\x00not a model" * 64)),
        ],
        ["fake.onnx", "not a loadable ONNX model"],
    ),
    "onnx with unknown layout": lambda tmp, v: (
        [
            "detect",
            str(v("people-detection.gif")),
            "--model",
            str(_onnx_with_output(tmp / "odd.onnx", [1, 96, 128])),
        ],
        ["odd.onnx", "unrecognised output layout [1, 96, 128]"],
    ),
    "unknown model name": lambda tmp, v: (
        ["detect", str(v("people-detection.gif")), "--model", "yolo99"],
        ["unknown model 'yolo99'"],
    ),
    "missing truth file": lambda tmp, v: (
        ["eval", str(v("people-detection.gif")), "-c", str(SAMPLE_CFG), "-t", str(tmp / "no.json")],
        ["no.json: file not found"],
    ),
    "unreachable rtsp": lambda tmp, v: (
        ["detect", f"rtsp://127.0.0.1:{free_port()}/live", "--retries", "2"],
        ["rtsp://127.0.0.1", "unreachable", "after 2 attempts"],
    ),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_one_line_error(
    case: str, tmp_path: Path, video_path: Callable[[str], Path]
) -> None:
    args, expected = BAD_CASES[case](tmp_path, video_path)
    _assert_user_error(run_edge(*args, timeout=120), *expected)


def test_runtime_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, edge.cli.main, edge.camera.chain, edge.detectors.onnx_runtime\n"
        "import edge.pipeline.tracking, edge.tools.replay\n"
        "assert 'torch' not in sys.modules and 'ultralytics' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
