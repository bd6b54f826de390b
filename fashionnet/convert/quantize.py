"""model.int8.onnx: onnxruntime static quantization of model.onnx (QDQ, per-channel int8 weights, uint8 activations).

uint8 activations x int8 weights is the pair x86's integer kernels take directly (u8s8, VPMADDUBSW/VNNI); int8
activations are shifted first: slower at batch 1 everywhere measured, and at batch 256 on AVX-512 and AMX machines
(docs/benchmarks.md).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from fashionnet import __version__
from fashionnet.convert.formats import EXPORT_KEPT, INPUT_NAME
from fashionnet.convert.onnx import GRAPH_NAME, check_and_write, set_onnx_metadata
from fashionnet.errors import ExportError
from fashionnet.runs import write_failed

CALIBRATION_BATCH = 100


class ImageBatches(CalibrationDataReader):
    """The calibration images, ``batch`` at a time, as onnxruntime's calibrator reads them."""

    def __init__(self, images: np.ndarray, batch: int = CALIBRATION_BATCH):
        self._batches = iter([{INPUT_NAME: images[i : i + batch]} for i in range(0, len(images), batch)])

    def get_next(self):
        return next(self._batches, None)


def quantize_onnx(
    fp32_path: Path, int8_path: Path, calibration_images: np.ndarray, meta: dict[str, str], activation_type=None
) -> None:
    """onnxruntime static quantization: QDQ format, per-channel int8 weights, uint8 activations (MinMax).

    ``activation_type`` (a QuantType) overrides the uint8 activations: benchmarks.quant_bench compares both."""
    with tempfile.TemporaryDirectory(prefix=".quant-", dir=int8_path.parent) as scratch:
        raw = _quantize_static(fp32_path, int8_path, Path(scratch), calibration_images, activation_type)
        proto = onnx.load(str(raw))
    proto.graph.name = GRAPH_NAME
    proto.doc_string = "fashionnet: the Keras Fashion-MNIST CNN, int8 static QDQ, exported by fashionnet " + __version__
    quantization = (
        f"static QDQ, per-channel int8 weights, uint8 activations, MinMax calibration on {len(calibration_images)} "
        "training images; float32 input and output"
    )
    set_onnx_metadata(proto, {**meta, "quantization": quantization})
    check_and_write(proto, int8_path)


def _quantize_static(fp32_path, int8_path: Path, scratch: Path, calibration_images, activation_type) -> Path:
    """onnxruntime's pre-processing and quantize_static into ``scratch``; failures name ``int8_path``."""
    pre, raw = scratch / "pre.onnx", scratch / "int8.onnx"
    try:
        # ONNX's own shape inference covers this CNN; the symbolic pass needs sympy, which onnxruntime does not
        # install (docs/export.md: the int8 model's outputs are the same without it)
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(raw),
            ImageBatches(calibration_images),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=activation_type or QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    except OSError as exc:
        raise write_failed(int8_path, exc, EXPORT_KEPT) from exc
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"{int8_path.name}: onnxruntime quantization failed ({type(exc).__name__}: {exc})") from exc
    return raw
