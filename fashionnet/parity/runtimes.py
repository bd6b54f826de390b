"""Running an exported artifact: one runner interface for ONNX and TFLite, chosen from the file name.

A runner is built from a file (``threads``: intra-op threads, default all) and called on one batch: an
(N, 28, 28, 1) float32 array in [0, 1] -> (N, 10) float32 probabilities. The ONNX and TFLite runners are the edge
kit's own ``OnnxClassifier`` and ``TfliteClassifier``, so the parity gate verifies exactly the code that ships to
devices; the microcontroller model runs here, on the TensorFlow Lite Micro interpreter (a build-machine check).

Keras-free on purpose (numpy, onnxruntime, ai_edge_litert): ``fashionnet predict`` on an artifact and the parity
gate start no Keras backend.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from fashionnet.core.data import IMAGE_SHAPE, NUM_CLASSES
from fashionnet.errors import ModelError, require
from fashionnet_edge import EdgeModelError, OnnxClassifier, TfliteClassifier, validate_batch, verify_file
from fashionnet_edge import check_contract as edge_check_contract

__all__ = [
    "RUNTIME_SUFFIXES",
    "Runner",
    "OnnxClassifier",
    "TfliteClassifier",
    "MicroRunner",
    "is_micro_model",
    "artifact_format",
    "check_contract",
    "open_runner",
    "qdq_as_written",
    "run_batched",
]


class Runner(Protocol):
    """One batch: (N, 28, 28, 1) float32 in [0, 1] -> (N, 10) float32 probabilities."""

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


def check_contract(path: str | os.PathLike, input_shape: Sequence, output_shape: Sequence) -> None:
    """ModelError naming ``path`` unless the model maps (N, *IMAGE_SHAPE) images to (N, NUM_CLASSES) probabilities
    (the edge kit owns the definition; fashionnet.core.networks.load applies it to .keras files)."""
    try:
        edge_check_contract(path, input_shape, output_shape)
    except EdgeModelError as exc:
        raise ModelError(str(exc)) from exc


MICRO_SUFFIX = ".mcu.tflite"  # a full-integer model for TensorFlow Lite Micro (fashionnet/publish/mcu.py)
MICRO_ARENA_LIMIT = 4 << 20  # bytes; the needed arena is found by bisection below this


class MicroRunner:
    """A full-integer TFLite model (int8 input and output, batch 1) on the TensorFlow Lite Micro interpreter, the
    runtime of microcontrollers; batches run one image at a time, (de)quantized with the model's parameters."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, arena_bytes: int = MICRO_ARENA_LIMIT):
        from tflite_micro.python.tflite_micro import runtime

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found")
        self.data = self.path.read_bytes()
        try:
            self.interpreter = runtime.Interpreter.from_bytes(self.data, arena_size=arena_bytes)
            self.input = self.interpreter.get_input_details(0)
            self.output = self.interpreter.get_output_details(0)
        except Exception as exc:  # noqa: BLE001 - the interpreter raises RuntimeError/ValueError for bad models
            raise ModelError(f"{self.path}: not a TensorFlow Lite Micro model ({type(exc).__name__}: {exc})") from exc
        found = (np.dtype(self.input["dtype"]), tuple(self.input["shape"]), np.dtype(self.output["dtype"]),
                 tuple(self.output["shape"]))  # fmt: skip
        if found != (np.dtype(np.int8), (1, *IMAGE_SHAPE), np.dtype(np.int8), (1, NUM_CLASSES)):
            raise ModelError(
                f"{self.path}: expected an int8 (1, 28, 28, 1) -> int8 (1, 10) model, found "
                f"{found[0]} {found[1]} -> {found[2]} {found[3]}"
            )

    @staticmethod
    def _scale_zero(details) -> tuple[float, int]:
        q = details["quantization_parameters"]
        return float(q["scales"][0]), int(q["zero_points"][0])

    @property
    def quantization(self) -> dict:
        """The input's and output's (scale, zero point): real = scale * (q - zero point)."""
        return {"input": self._scale_zero(self.input), "output": self._scale_zero(self.output)}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = validate_batch(x)
        (in_scale, in_zero), (out_scale, out_zero) = self.quantization["input"], self.quantization["output"]
        q = np.clip(np.round(x / in_scale + in_zero), -128, 127).astype(np.int8)
        out = np.empty((len(x), NUM_CLASSES), dtype=np.float32)
        for i in range(len(q)):
            self.interpreter.set_input(q[i : i + 1], 0)
            self.interpreter.invoke()
            out[i] = (self.interpreter.get_output(0)[0].astype(np.float32) - out_zero) * out_scale
        return out

    def arena_bytes_needed(self, resolution: int = 16) -> int:
        """The smallest tensor arena this interpreter runs the model in, to ``resolution`` bytes (bisection)."""
        from tflite_micro.python.tflite_micro import runtime

        def runs(size: int) -> bool:
            try:
                interpreter = runtime.Interpreter.from_bytes(self.data, arena_size=size)
                interpreter.set_input(np.zeros((1, *IMAGE_SHAPE), dtype=np.int8), 0)
                interpreter.invoke()
                return True
            except Exception:  # noqa: BLE001 - "arena too small" is a RuntimeError from the C++ allocator
                return False

        low, high = 0, MICRO_ARENA_LIMIT
        if not runs(high):
            raise ModelError(f"{self.path}: does not run in a {high:,}-byte tensor arena")
        while high - low > resolution:
            middle = (low + high) // 2
            low, high = (low, middle) if runs(middle) else (middle, high)
        return high

    def ops(self) -> list[str]:
        """The model's builtin operators, e.g. ['CONV_2D', 'FULLY_CONNECTED', ...]."""
        from tflite_micro.python.tflite_micro import runtime
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        model = runtime.convert_bytearray_to_object(self.data)
        codes = {runtime.get_builtin_code_from_operator_code(op) for op in model.operatorCodes}
        return sorted(names.get(code, str(code)) for code in codes)


def is_micro_model(path: str | os.PathLike) -> bool:
    return Path(path).name.lower().endswith(MICRO_SUFFIX)


# suffix -> (runner, the module it needs, the extra that installs that module)
_RUNTIMES = {
    ".onnx": (OnnxClassifier, "onnxruntime", "edge"),
    ".tflite": (TfliteClassifier, "ai_edge_litert", "export"),
}
RUNTIME_SUFFIXES = tuple(_RUNTIMES)


def artifact_format(path: str | os.PathLike) -> str:
    """The artifact's format, "onnx" or "tflite", from its file name; ModelError for any other file."""
    suffix = Path(path).suffix.lower()
    if suffix not in _RUNTIMES:
        raise ModelError(f"{Path(path).name}: not an .onnx or .tflite artifact")
    return suffix[1:]


def open_runner(path: str | os.PathLike, threads: int | None = None, verify: bool = True) -> Runner:
    """The runner for an artifact: the edge kit's OnnxClassifier for .onnx and TfliteClassifier for .tflite, the
    TensorFlow Lite Micro interpreter for the microcontroller model (.mcu.tflite).

    A missing, damaged or foreign file is a ModelError naming it; so is a file that differs from the export's
    manifest.json beside it (unless ``verify`` is False); a runtime that is not installed is a
    MissingDependencyError naming the extra that brings it.
    """
    path = Path(path)
    runner, module, extra = _RUNTIMES["." + artifact_format(path)]
    if is_micro_model(path):
        runner, module, extra = MicroRunner, "tflite_micro", "mcu"
    require(module, extra)
    try:
        if verify:
            verify_file(path)
        return runner(path, threads=threads, **({} if runner is MicroRunner else {"verify": False}))  # hashed once
    except EdgeModelError as exc:
        raise ModelError(str(exc)) from exc


def qdq_as_written(path: str | os.PathLike) -> OnnxClassifier:
    """The kit's ONNX classifier on a session without onnxruntime's fused int8 kernels (ORT_ENABLE_BASIC keeps the
    DequantizeLinear -> float op -> QuantizeLinear graph as written): the arithmetic every runtime should match."""
    import onnxruntime as ort

    require("onnxruntime", "edge")
    runner = OnnxClassifier(path, verify=False)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    runner.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return runner


def run_batched(runner: Runner, images: np.ndarray, batch_size: int) -> np.ndarray:
    """All images through ``runner``, ``batch_size`` at a time (bounds the runtime's memory); (N, 10) float32."""
    parts = [runner(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return np.concatenate(parts).astype(np.float32)
