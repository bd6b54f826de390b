"""The export's names and options: formats, quantizations, artifact file names, the models' interface and metadata.

Artifacts (see docs/export.md):

* ``model.onnx``: fp32, opset 15, input ``image`` (batch, 28, 28, 1) float32, output ``probabilities`` (batch, 10).
* ``model.tflite``: fp32, TFLite builtin ops only (no Flex), signature ``serving_default``: image -> probabilities.
* ``model.int8.onnx``: onnxruntime static QDQ quantization, per-channel int8 weights, uint8 activations,
  calibrated on training images; float32 input/output like the fp32 model.
* ``model.int8.tflite``: full-integer post-training quantization (builtin int8 ops), float32 input/output.
* ``model.mcu.tflite`` (opt-in): full-integer with int8 input/output, batch 1, for TensorFlow Lite Micro.
"""

from __future__ import annotations

import json

from fashionnet import __version__
from fashionnet.errors import ExportError
from fashionnet_edge import CLASS_NAMES

__all__ = [
    "FORMATS",
    "MCU",
    "KNOWN_FORMATS",
    "QUANTIZATIONS",
    "ARTIFACT_NAMES",
    "PREPROCESSING",
    "artifact_names",
    "check_options",
    "artifact_metadata",
]

FORMATS = ("onnx", "tflite")  # the default export
MCU = "mcu"  # opt-in: the full-integer model for TensorFlow Lite Micro (needs --quantize int8; publish/mcu.py)
KNOWN_FORMATS = (*FORMATS, MCU)
QUANTIZATIONS = (None, "int8")
ARTIFACT_NAMES = {
    ("onnx", None): "model.onnx",
    ("tflite", None): "model.tflite",
    ("onnx", "int8"): "model.int8.onnx",
    ("tflite", "int8"): "model.int8.tflite",
    (MCU, "int8"): "model.mcu.tflite",
}
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
BATCH_DIM = "batch"
ONNX_OPSET = 15  # tf2onnx 1.17's default; QDQ per-channel needs >= 13
PREPROCESSING = (
    "grey 28x28 image, light garment on a black background, float32 = uint8 / 255 in [0, 1], "
    "shape (batch, 28, 28, 1) NHWC"
)
CALIBRATION_IMAGES = 1000  # training images used to calibrate int8 activations (seeded random sample)
CALIBRATION_SEED = 0
EXPORT_KEPT = "the published export is unchanged"  # artifacts are built in a staging folder


def artifact_names(formats: tuple[str, ...] | list[str] | str, quantize: str | None) -> list[str]:
    """The file names an export of these formats produces, in a stable order."""
    formats, quantize = check_options(formats, quantize)
    names = [ARTIFACT_NAMES[(f, None)] for f in formats if f != MCU]
    if quantize:
        names += [ARTIFACT_NAMES[(f, quantize)] for f in formats]
    return names


def check_options(formats, quantize) -> tuple[tuple[str, ...], str | None]:
    """(formats, quantize) checked: formats as a tuple without repeats (a "onnx,tflite" string is split)."""
    if isinstance(formats, str):
        formats = tuple(f.strip() for f in formats.split(",") if f.strip())
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in KNOWN_FORMATS]
    if unknown or not formats:
        raise ExportError(f"unknown export format(s) {unknown or formats}: choose from {', '.join(KNOWN_FORMATS)}")
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantize!r}: choose from none, int8")
    if MCU in formats and quantize != "int8":
        raise ExportError("the mcu format is a full-integer int8 model: add --quantize int8")
    return formats, quantize


def artifact_metadata(extra: dict[str, str]) -> dict[str, str]:
    """The metadata every ONNX artifact carries (class names, preprocessing, interface), plus ``extra``."""
    return {
        "class_names": json.dumps(list(CLASS_NAMES)),
        "preprocessing": PREPROCESSING,
        "fashionnet_version": __version__,
        "input": f"{INPUT_NAME}: float32 ({BATCH_DIM}, 28, 28, 1)",
        "output": f"{OUTPUT_NAME}: float32 ({BATCH_DIM}, 10), softmax over class_names",
        **extra,
    }
