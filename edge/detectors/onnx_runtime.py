"""ONNX Runtime backend for YOLOX and Ultralytics YOLO exports (CPU, no torch)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from contract.config.detector import OnnxDetectorConfig
from edge.detectors.base import Detector
from edge.detectors.catalog import Manifest, resolve_model
from edge.detectors.detections import Detections
from edge.detectors.layouts import make_layout, recognise_layout
from edge.detectors.letterbox import Letterbox
from edge.errors import ModelError

log = logging.getLogger(__name__)

_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def _metadata_names(session: ort.InferenceSession) -> tuple[str, ...] | None:
    """Ultralytics writes ``names`` as a Python dict literal into the ONNX metadata."""
    raw = session.get_modelmeta().custom_metadata_map.get("names")
    if not raw:
        return None
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        log.warning("ignoring unreadable 'names' metadata in model")
        return None
    if isinstance(names, dict):
        return tuple(str(names[k]) for k in sorted(names))
    if isinstance(names, list):
        return tuple(str(n) for n in names)
    return None


class OnnxDetector(Detector):
    def __init__(
        self,
        cfg: OnnxDetectorConfig,
        manifest: Manifest,
        *,
        score_threshold: float = 0.3,
        nms_iou: float = 0.45,
        base_dir: Path | None = None,
    ) -> None:
        path = resolve_model(cfg.model, manifest, base_dir)
        self.model_path = path
        self.model_name = path.stem
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        opts = ort.SessionOptions()
        opts.graph_optimization_level = _OPT_LEVELS[cfg.graph_optimization]
        if cfg.threads:
            opts.intra_op_num_threads = cfg.threads
        # By default idle intra-op threads sleep instead of spinning: on a box whose cameras'
        # readers and detect stage need the cores between calls, spinning burns them.
        spin = "1" if cfg.spin_wait else "0"
        opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
        opts.log_severity_level = 3  # onnxruntime warnings would drown the CLI's own output
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several unrelated types for bad files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{path}: not a loadable ONNX model ({first})") from None

        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelError(f"{path}: expected one image input, found {len(inputs)} inputs")
        in_shape = inputs[0].shape
        if len(in_shape) != 4 or not all(isinstance(d, int) for d in in_shape[2:]):
            raise ModelError(f"{path}: input shape {in_shape} is not a fixed N x 3 x H x W image")
        self.input_wh = (int(in_shape[3]), int(in_shape[2]))
        # Frames one run takes: fixed by the export, or None when the batch axis is dynamic.
        self.batch_size: int | None = in_shape[0] if isinstance(in_shape[0], int) else None
        self._input_name = inputs[0].name
        out_shape = tuple(d if isinstance(d, int) else -1 for d in outputs[0].shape)
        self._output_name = outputs[0].name

        layout_name, n_classes = recognise_layout(out_shape, self.input_wh, str(path))
        if cfg.layout != "auto" and cfg.layout != layout_name:
            raise ModelError(
                f"{path}: configured layout '{cfg.layout}' but the output shape "
                f"{list(out_shape)} is a {layout_name} layout"
            )
        self.layout = make_layout(layout_name, self.input_wh)

        names = _metadata_names(self._session)
        if names is None:
            known = manifest.entry_for_file(path)
            names = manifest.class_names(known[1]) if known else None
        if names is None:
            names = tuple(f"class_{i}" for i in range(n_classes))
        if len(names) != n_classes:
            raise ModelError(
                f"{path}: model outputs {n_classes} classes but its class list has {len(names)}"
            )
        self.class_names = names

    def infer_raw(self, blob: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = self._session.run([self._output_name], {self._input_name: blob})[0]
        return np.asarray(out, dtype=np.float32)

    def detect(self, frame_bgr: npt.NDArray[np.uint8]) -> Detections:
        if self.batch_size is not None and self.batch_size > 1:
            return self.detect_batch([frame_bgr])[0]
        blob, lb = self.layout.preprocess(frame_bgr)
        return self._postprocess(self.infer_raw(blob), lb, frame_bgr.shape)

    def detect_batch(self, frames_bgr: list[npt.NDArray[np.uint8]]) -> list[Detections]:
        """One session run per batch when the model takes more than one frame."""
        if self.batch_size == 1 or (self.batch_size is None and len(frames_bgr) < 2):
            return [self.detect(f) for f in frames_bgr]
        step = self.batch_size or len(frames_bgr)
        out: list[Detections] = []
        for first in range(0, len(frames_bgr), step):
            chunk = frames_bgr[first : first + step]
            prepared = [self.layout.preprocess(f) for f in chunk]
            blob = np.concatenate([b for b, _ in prepared])
            if self.batch_size is not None and len(chunk) < step:
                pad = np.zeros((step - len(chunk), *blob.shape[1:]), dtype=blob.dtype)
                blob = np.concatenate([blob, pad])  # a fixed-batch model takes only full batches
            raw = self.infer_raw(blob)
            for i, (frame, (_, lb)) in enumerate(zip(chunk, prepared, strict=True)):
                out.append(self._postprocess(raw[i : i + 1], lb, frame.shape))
        return out

    def _postprocess(
        self, output: npt.NDArray[np.float32], lb: Letterbox, shape: tuple[int, ...]
    ) -> Detections:
        h, w = shape[:2]
        raw = self.layout.decode(output, self.score_threshold)
        if len(raw.score) == 0:
            return Detections.empty()
        xyxy = lb.to_frame(raw.xyxy, (w, h))
        xywh = np.concatenate([xyxy[:, 0:2], xyxy[:, 2:4] - xyxy[:, 0:2]], axis=1)
        keep = cv2.dnn.NMSBoxesBatched(
            xywh.tolist(),
            raw.score.tolist(),
            raw.class_id.tolist(),
            self.score_threshold,
            self.nms_iou,
        )
        idx = np.asarray(keep, dtype=np.int64).reshape(-1)
        return Detections(xyxy=xyxy[idx], score=raw.score[idx], class_id=raw.class_id[idx])
