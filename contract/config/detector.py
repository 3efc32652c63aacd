"""Detector backend configs: one model per backend, joined in a union keyed by ``type``.

A new backend (OpenVINO, TensorRT, ...) adds its own config class here and its own module.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class OnnxDetectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["onnx"] = "onnx"
    model: str = Field(
        "yolox_nano", description="A name from models/manifest.yaml, or a path to an .onnx file."
    )
    layout: Literal["auto", "yolox", "yolov8"] = Field(
        "auto", description="Output layout; 'auto' recognises it from the output shape."
    )
    threads: int = Field(0, ge=0, description="Intra-op threads; 0 lets onnxruntime choose.")
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    spin_wait: bool = Field(
        False,
        description="Idle intra-op threads spin between calls: a little faster back to back, "
        "but they burn the cores the cameras' readers and the detect stage need.",
    )


DetectorConfig = Annotated[OnnxDetectorConfig, Field(discriminator="type")]
