"""model.tflite, model.int8.tflite and model.mcu.tflite: Keras's LiteRT route (ExportArchive -> SavedModel ->
TFLiteConverter), restricted to builtin ops.

Our own endpoint returns ``{"probabilities": ...}`` so the TFLite signature names its output (Keras's
``model.export(format="litert")`` calls it ``output_0`` and also allows Flex ops).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fashionnet.convert.formats import ARTIFACT_NAMES, EXPORT_KEPT, INPUT_NAME, OUTPUT_NAME
from fashionnet.errors import ExportError
from fashionnet.runs import write_bytes, write_failed

FP32 = "fp32"  # builtin float ops
INT8 = "int8"  # full-integer ops, float32 input and output (quantize/dequantize inside)
INT8_IO = "int8-io"  # full-integer ops and int8 input and output: TFLite Micro runs integer kernels only


def export_tflite(model, out_dir: Path, quantize: str | None, calibration_images: np.ndarray | None) -> None:
    """model.tflite (batch dim dynamic), and model.int8.tflite when ``quantize``."""
    with tempfile.TemporaryDirectory(prefix=".savedmodel-", dir=out_dir) as saved_model:
        write_saved_model(model, saved_model, batch=None)
        _convert(saved_model, FP32, None, out_dir / ARTIFACT_NAMES[("tflite", None)], "TFLite")
        if quantize:
            # float32 in/out: same interface as the fp32 model, so one runner and one preprocessing serve both
            _convert(saved_model, INT8, calibration_images, out_dir / ARTIFACT_NAMES[("tflite", quantize)], "TFLite")


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


def _convert(saved_model: str, mode: str, calibration_images, path: Path, what: str) -> None:
    """Convert and write ``path``; a converter failure is an ExportError naming the file and ``what``."""
    try:
        data = tflite_converter(saved_model, mode, calibration_images).convert()
    except OSError as exc:
        raise write_failed(path, exc, EXPORT_KEPT) from exc
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"{path.name}: {what} conversion failed ({type(exc).__name__}: {exc})") from exc
    write_bytes(path, data)
