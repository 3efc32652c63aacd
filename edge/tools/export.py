"""Turn an Ultralytics checkpoint (or model YAML) into an ONNX file this runtime reads.

Needs the ``export`` extra (ultralytics, torch); imported lazily so the edge runtime never
loads torch.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from contract.errors import StreetwatchError


def export_ultralytics(
    weights: str,
    out: Path | None,
    imgsz: int,
    int8: bool,
    class_names: tuple[str, ...] | None = None,
    batch: int = 1,
) -> Path:
    try:
        from ultralytics import YOLO
    except ImportError:
        raise StreetwatchError(
            "model export needs the 'export' extra: pip install -e '.[export]'"
        ) from None
    model = YOLO(weights)
    if class_names is not None:
        # A model built from YAML has numbered classes; name them so the ONNX metadata does.
        have = len(model.names)
        if have != len(class_names):
            raise StreetwatchError(
                f"{weights} has {have} classes but the class list has {len(class_names)}"
            )
        model.model.names = dict(enumerate(class_names))
    # simplify=False: onnxslim would be installed on the fly, and the plain graph runs the same.
    exported = Path(
        str(
            model.export(
                format="onnx", imgsz=imgsz, batch=batch, simplify=False, dynamic=False, opset=17
            )
        )
    )
    target = out or exported.with_name(exported.stem + ("_int8" if int8 else "") + ".onnx")
    target.parent.mkdir(parents=True, exist_ok=True)
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(exported), str(target), weight_type=QuantType.QUInt8)
        _copy_metadata(exported, target)
    elif exported.resolve() != target.resolve():
        shutil.copyfile(exported, target)
    return target


def _copy_metadata(src: Path, dst: Path) -> None:
    """Quantisation drops Ultralytics' metadata (class names, imgsz); put it back."""
    import onnx

    src_model = onnx.load(str(src), load_external_data=False)
    dst_model = onnx.load(str(dst))
    have = {p.key for p in dst_model.metadata_props}
    for prop in src_model.metadata_props:
        if prop.key not in have:
            dst_model.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(dst_model, str(dst))
