"""model.tflite, model.int8.tflite and model.mcu.tflite: Keras's LiteRT route (ExportArchive -> SavedModel ->
TFLiteConverter), restricted to builtin ops.

model.int8.tflite is integer up to the classifier, which stays float32 (as in model.int8.onnx: quantizing the ten
logits is what flips near ties), by TensorFlow's selective quantization (``tf.lite.experimental``'s
QuantizationDebugger with the classifier denylisted). model.mcu.tflite stays integer throughout: TensorFlow Lite
Micro's kernels are integer.

Our own endpoint returns ``{"probabilities": ...}`` so the TFLite signature names its output (Keras's
``model.export(format="litert")`` calls it ``output_0`` and also allows Flex ops).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fashionnet.convert.formats import ARTIFACT_NAMES, EXPORT_KEPT, INPUT_NAME, OUTPUT_NAME
from fashionnet.errors import ExportError
from fashionnet.runs import write_bytes, write_failed

FP32 = "fp32"  # builtin float ops
INT8 = "int8"  # integer ops up to a float32 classifier, float32 input and output (quantize/dequantize inside)
INT8_IO = "int8-io"  # full-integer ops and int8 input and output: TFLite Micro runs integer kernels only


def export_tflite(model, out_dir: Path, quantize: str | None, calibration_images: np.ndarray | None) -> None:
    """model.tflite (batch dim dynamic), and model.int8.tflite when ``quantize``."""
    with tempfile.TemporaryDirectory(prefix=".savedmodel-", dir=out_dir) as saved_model:
        write_saved_model(model, saved_model, batch=None)
        _convert(saved_model, FP32, None, out_dir / ARTIFACT_NAMES[("tflite", None)], "TFLite")
        if quantize:
            # float32 in/out: same interface as the fp32 model, so one runner and one preprocessing serve both
            path = out_dir / ARTIFACT_NAMES[("tflite", quantize)]
            _convert(saved_model, INT8, calibration_images, path, "TFLite", float_layers=classifier_layers(model))


def export_mcu(model, path: Path, calibration_images: np.ndarray) -> None:
    """The microcontroller model: batch 1, int8 everywhere including the input and output (the device quantizes
    its pixels with the input's scale and zero point)."""
    with tempfile.TemporaryDirectory(prefix=".savedmodel-", dir=path.parent) as saved_model:
        write_saved_model(model, saved_model, batch=1)
        _convert(saved_model, INT8_IO, calibration_images, path, "TFLite Micro")


def write_saved_model(model, folder: str, batch: int | None) -> None:
    """``model`` as a SavedModel whose one endpoint takes ``image`` (batch, 28, 28, 1) and returns
    ``{"probabilities": ...}``; ``batch`` None is a dynamic batch dim."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve",
        lambda image: {OUTPUT_NAME: model(image, training=False)},
        input_signature=[tf.TensorSpec([batch, 28, 28, 1], tf.float32, name=INPUT_NAME)],
    )
    archive.write_out(folder, verbose=False)


def tflite_converter(saved_model: str, mode: str, calibration_images: np.ndarray | None = None):
    """A TFLiteConverter for ``mode``: FP32, INT8 (float32 in/out) or INT8_IO, the int8 ones calibrated one
    image at a time on ``calibration_images``."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if mode == FP32:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter
    if mode not in (INT8, INT8_IO):
        raise ValueError(f"unknown TFLite conversion mode {mode!r}")
    images = calibration_images
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([images[i : i + 1]] for i in range(len(images)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_type = tf.int8 if mode == INT8_IO else tf.float32
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    return converter


def classifier_layers(model) -> list[str]:
    """The Keras layers kept in float32: each Dense layer with a softmax (in a nested network too) and the layers
    the outer model computes from it (e.g. flip_averaged's Average)."""
    names: list[str] = []

    def visit(network) -> bool:
        after = False
        for layer in network.layers:
            if isinstance(layer, keras.Model):
                after = visit(layer) or after
            elif after or getattr(getattr(layer, "activation", None), "__name__", "") == "softmax":
                names.append(layer.name)
                after = True
        return after

    visit(model)
    return names


def layer_tensors(tensor_names, layer: str) -> list[str]:
    """The tensors a Keras layer's ops made: TensorFlow scopes them under the layer's name (``probabilities_1/``)."""
    scope = re.compile(rf"(^|/){re.escape(layer)}(_\d+)?/")
    return [name for name in tensor_names if scope.search(name)]


def int8_with_float_layers(saved_model: str, calibration_images: np.ndarray, layers: list[str]) -> bytes:
    """INT8 conversion with ``layers`` (and every Softmax) left in float32: calibrate once, then quantize
    everything but what the debugger's options denylist."""
    from ai_edge_litert.interpreter import Interpreter

    converter = tflite_converter(saved_model, INT8, calibration_images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # int8 and float builtin ops
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=converter.representative_dataset
    )
    tensors = [t["name"] for t in Interpreter(model_content=debugger.calibrated_model).get_tensor_details()]
    names = [name for layer in layers for name in layer_tensors(tensors, layer)]
    if not layers or not names:
        raise ValueError(f"no tensor of the classifier layers {layers} in the converted model")
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=["SOFTMAX"], denylisted_nodes=names)
    return debugger.get_nondebug_quantized_model()


def _convert(saved_model: str, mode: str, calibration_images, path: Path, what: str, float_layers=None) -> None:
    """Convert and write ``path`` (``float_layers``: Keras layers kept in float32 in an INT8 model); a converter
    failure is an ExportError naming the file and ``what``."""
    try:
        if float_layers is None:
            data = tflite_converter(saved_model, mode, calibration_images).convert()
        else:
            data = int8_with_float_layers(saved_model, calibration_images, float_layers)
    except OSError as exc:
        raise write_failed(path, exc, EXPORT_KEPT) from exc
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"{path.name}: {what} conversion failed ({type(exc).__name__}: {exc})") from exc
    write_bytes(path, data)
