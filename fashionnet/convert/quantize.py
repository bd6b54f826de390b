"""model.int8.onnx: onnxruntime static quantization of model.onnx, settings chosen for one answer on every CPU.

* QDQ, uint8 activations x per-channel int8 weights: the pair x86's integer kernels take directly (u8s8); int8
  activations are shifted first and run slower (docs/benchmarks.md).
* ``reduce_range``: 7-bit weights. x86 without VNNI multiplies u8 x s8 with VPMADDUBSW, whose 16-bit pair sum
  saturates at 8-bit weights (onnxruntime's quantization docs); at 7 bits it cannot, so AVX2, AVX-512 VNNI, ARM64
  and WebAssembly compute the same integers (uint8 weights would too, at half the speed).
* The classifier (the last Gemm and its Softmax) stays float32: quantizing the ten logits is what flips near
  ties; its 2,570 weights cost nothing in speed or size.

docs/export.md has the settings measured against each other on every runtime.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
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
FLOAT_CLASSIFIER_OPS = ("Gemm", "MatMul")  # the op types the classifier before the Softmax may be exported as


class ImageBatches(CalibrationDataReader):
    """The calibration images, ``batch`` at a time, as onnxruntime's calibrator reads them."""

    def __init__(self, images: np.ndarray, batch: int = CALIBRATION_BATCH):
        self._batches = iter([{INPUT_NAME: images[i : i + batch]} for i in range(0, len(images), batch)])

    def get_next(self):
        return next(self._batches, None)


@dataclass(frozen=True)
class Settings:
    """The int8 settings; the defaults are the export's (benchmarks.quant_bench measures the alternatives)."""

    activation_type: QuantType = QuantType.QUInt8
    reduce_range: bool = True  # 7-bit weights: no VPMADDUBSW saturation
    float_classifier: bool = True  # the last Gemm and its Softmax stay float32

    def describe(self, calibration_images: int) -> str:
        """The settings in words, as the int8 model's metadata states them."""
        bits = "7 bits (reduce_range: no saturation on any CPU)" if self.reduce_range else "8 bits"
        activations = "int8" if self.activation_type == QuantType.QInt8 else "uint8"
        classifier = "the classifier (last Gemm and Softmax) in float32" if self.float_classifier else "every layer"
        return (
            f"static QDQ, per-channel int8 weights in {bits}, {activations} activations, MinMax calibration on "
            f"{calibration_images} training images; {classifier}; float32 input and output"
        )


EXPORTED = Settings()


def quantize_onnx(
    fp32_path: Path, int8_path: Path, calibration_images: np.ndarray, meta: dict[str, str], settings=EXPORTED
) -> None:
    """onnxruntime static quantization with ``settings`` (the export's unless a benchmark says otherwise)."""
    with tempfile.TemporaryDirectory(prefix=".quant-", dir=int8_path.parent) as scratch:
        raw = _quantize_static(fp32_path, int8_path, Path(scratch), calibration_images, settings)
        proto = onnx.load(str(raw))
    proto.graph.name = GRAPH_NAME
    proto.doc_string = "fashionnet: the Keras Fashion-MNIST CNN, int8 static QDQ, exported by fashionnet " + __version__
    set_onnx_metadata(proto, {**meta, "quantization": settings.describe(len(calibration_images))})
    check_and_write(proto, int8_path)


def float_classifier(graph: onnx.GraphProto) -> list[str]:
    """The names of the nodes kept in float: what turns the Softmax outputs into the graph's output (e.g. the mean of
    flip_averaged's two), each Softmax, and the Gemm/MatMul (with its bias Add, if separate) that feeds it.
    ExportError when the graph does not end that way."""
    producers = {output: node for node in graph.node for output in node.output}
    last = producers.get(graph.output[0].name)
    tail, softmaxes, pending, seen = [], [], [graph.output[0].name], set()
    while pending:
        node = producers.get(pending.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == "Softmax":
            softmaxes.append(node)
        else:
            tail.append(node.name)
            pending.extend(node.input)
    if not softmaxes:
        found = "an input" if last is None else last.op_type
        raise ExportError(f"expected the graph's output to come from a Softmax, found {found}")
    names = []
    for softmax in softmaxes:
        node = producers.get(softmax.input[0])
        bias = []
        if node is not None and node.op_type == "Add":
            bias = [node.name]
            node = next((producers[i] for i in node.input if i in producers), None)
        if node is None or node.op_type not in FLOAT_CLASSIFIER_OPS:
            raise ExportError(
                f"expected a {' or '.join(FLOAT_CLASSIFIER_OPS)} before the Softmax, found "
                f"{'an input' if node is None else node.op_type}"
            )
        names += [node.name, softmax.name, *bias]
    return names + tail


def _quantize_static(fp32_path, int8_path: Path, scratch: Path, calibration_images, settings: Settings) -> Path:
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
            reduce_range=settings.reduce_range,
            weight_type=QuantType.QInt8,
            activation_type=settings.activation_type,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=float_classifier(onnx.load(str(pre)).graph) if settings.float_classifier else [],
        )
    except ExportError as exc:  # the graph is not the CNN's shape: name the file being made
        raise ExportError(f"{int8_path.name}: {exc}") from exc
    except OSError as exc:
        raise write_failed(int8_path, exc, EXPORT_KEPT) from exc
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"{int8_path.name}: onnxruntime quantization failed ({type(exc).__name__}: {exc})") from exc
    return raw
