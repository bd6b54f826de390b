"""The parity gate: every exported artifact must reproduce Keras's probabilities before it is published.

Backend-agnostic on purpose: only numpy, onnxruntime and ai_edge_litert. The reference probabilities come from
the caller, computed by Keras in the caller's own backend (a jax-trained model is checked against jax Keras).

Checks per artifact, on the whole given set (the 10,000 test images in real use):

* fp32: max |p_artifact - p_keras| <= ONNX_FP32_TOLERANCE / TFLITE_FP32_TOLERANCE, and top-1 equal to Keras on
  every image. The one allowance: an image whose Keras top-2 margin is within 2 x tolerance is a near tie; a
  flip there is the tolerance at work, not a bug, so it is counted and reported, not failed.
* int8: accuracy drop vs Keras fp32 <= INT8_MAX_ACCURACY_DROP_POINTS, and top-1 as Keras on at least
  INT8_MIN_TOP1_AGREEMENT of the images on every runtime the gate runs (the runtime's int8 kernels on this CPU;
  for ONNX also the QDQ graph as written); the microcontroller model's agreement is reported, not gated.
* all: the batch dimension is dynamic: a slice is re-run at DYNAMIC_BATCH_SIZES and must match the full run.
* TFLite: builtin ops only (no Flex or custom ops).
* mcu: batch 1 by design; its tensor arena and flash needs are measured.

Each check is one function of fashionnet/parity/checks.py; the report's Markdown is fashionnet/parity/report.py.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fashionnet import __version__
from fashionnet.convert.formats import ARTIFACT_NAMES, MCU
from fashionnet.core.data import IMAGE_SHAPE, NUM_CLASSES
from fashionnet.core.machine import cpu_info
from fashionnet.core.timing import call_times
from fashionnet.parity.checks import (
    DYNAMIC_BATCH_SIZES,
    FORMAT_CHECKS,
    INT8_MAX_ACCURACY_DROP_POINTS,
    INT8_MIN_TOP1_AGREEMENT,
    LATENCY_RUNS,
    ONNX_FP32_TOLERANCE,
    PRECISION_CHECKS,
    RUN_BATCH,
    TFLITE_FP32_TOLERANCE,
    Gate,
    Outputs,
    agreement,
)
from fashionnet.parity.report import progress_line
from fashionnet.parity.runtimes import artifact_format, is_micro_model, open_runner, run_batched

__all__ = [
    "ONNX_FP32_TOLERANCE",
    "TFLITE_FP32_TOLERANCE",
    "INT8_MAX_ACCURACY_DROP_POINTS",
    "INT8_MIN_TOP1_AGREEMENT",
    "DYNAMIC_BATCH_SIZES",
    "verify_artifacts",
    "artifact_kind",
]


def artifact_kind(path: Path) -> tuple[str, str]:
    """(format, precision) from the file name: model.onnx -> (onnx, fp32), model.int8.tflite -> (tflite, int8)."""
    if is_micro_model(path):
        return MCU, "int8"
    return artifact_format(path), ("int8" if ".int8." in Path(path).name else "fp32")


def _latency_ms(path: Path, image: np.ndarray) -> float:
    """Median wall time of one single-image, single-thread inference (after a warm-up)."""
    return statistics.median(call_times(open_runner(path, threads=1), image, LATENCY_RUNS)) * 1e3


def _verify_one(name: str, path: Path, gate: Gate) -> dict:
    """One artifact's entry of the report: it runs, its outputs have Keras's shape, then every check of its
    precision and format."""
    fmt, precision = artifact_kind(path)
    entry = {"file": Path(path).name, "format": fmt, "precision": precision, "size_bytes": Path(path).stat().st_size}
    try:
        runner = open_runner(path)
        probs = run_batched(runner, gate.images, RUN_BATCH)
    except Exception as exc:  # noqa: BLE001 - an artifact that does not even run fails its gate
        entry.update(passed=False, reason=f"{name}: does not run ({type(exc).__name__}: {exc})", checks=[])
        return entry
    if probs.shape != gate.reference.shape:
        shapes = f"output shape {probs.shape} != Keras {gate.reference.shape}"
        entry.update(passed=False, reason=f"{name}: {shapes}", checks=[])
        return entry
    out = Outputs(name, Path(path), runner, probs, precision, fmt)
    agreement(out, gate, entry)
    checks = PRECISION_CHECKS[precision](out, gate, entry)
    for check in FORMAT_CHECKS[fmt]:
        checks += check(out, gate, entry)
    if gate.measure_latency:
        entry["latency_ms_batch1"] = _latency_ms(path, gate.images[:1])
    failed = [c["message"] for c in checks if not c["passed"]]
    entry["checks"] = checks
    entry["passed"] = not failed
    entry["reason"] = "; ".join(failed) if failed else "all checks passed"
    return entry


def _checked_inputs(reference_probs, images, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    reference = np.asarray(reference_probs, dtype=np.float32)
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels).astype(np.int64)
    if (
        reference.shape != (len(images), NUM_CLASSES)
        or labels.shape != (len(images),)
        or images.shape[1:] != IMAGE_SHAPE
    ):
        raise ValueError(
            f"verify_artifacts: images {images.shape}, reference {reference.shape} and labels {labels.shape} disagree"
        )
    return reference, images, labels


def _compare_micro_with_int8_tflite(entries: dict, gate: Gate) -> None:
    """The microcontroller model's top-1 against LiteRT's int8 model: the same integer layers (the LiteRT model's
    classifier is float32), another runtime."""
    micro_name, int8_name = ARTIFACT_NAMES[(MCU, "int8")], ARTIFACT_NAMES[("tflite", "int8")]
    micro, int8_tflite = entries.get(micro_name), gate.predictions.get(int8_name)
    if micro is not None and int8_tflite is not None and micro_name in gate.predictions:
        micro["top1_agreement_with_int8_tflite"] = int((gate.predictions[micro_name] == int8_tflite).sum())


def verify_artifacts(
    artifacts: dict[str, Path],
    reference_probs: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    keras_backend: str | None = None,
    onnx_tolerance: float = ONNX_FP32_TOLERANCE,
    tflite_tolerance: float = TFLITE_FP32_TOLERANCE,
    int8_max_drop_points: float = INT8_MAX_ACCURACY_DROP_POINTS,
    int8_min_agreement: float = INT8_MIN_TOP1_AGREEMENT,
    batch_sizes: tuple[int, ...] = DYNAMIC_BATCH_SIZES,
    measure_latency: bool = True,
    log: Callable[[str], object] | None = None,
) -> dict:
    """Check each artifact against the Keras reference; returns the parity report (JSON-serialisable).

    ``artifacts``: {name: path} (names as export_model returns them); ``reference_probs``: Keras's (N, 10)
    probabilities for ``images`` ((N, 28, 28, 1) float32 in [0, 1]); ``labels``: (N,) ints.
    ``report["passed"]`` is True only when every artifact passes; ``report["failures"]`` lists one line per
    failed check, naming artifact, check and amount. ``log`` (e.g. ``print``) gets one line per artifact as
    soon as it is verified, so a user of a long export sees progress instead of silence.
    """
    reference, images, labels = _checked_inputs(reference_probs, images, labels)
    tolerances = {
        "onnx": onnx_tolerance,
        "tflite": tflite_tolerance,
        "int8_drop_points": int8_max_drop_points,
        "int8_min_agreement": int8_min_agreement,
    }
    machine = cpu_info()
    cpu = f"{machine['model_name']}, {machine['int8_isa']}"
    gate = Gate(reference, images, labels, tolerances, tuple(batch_sizes), measure_latency, {}, cpu)
    keras_pred = gate.keras_pred
    entries = {}
    for name, path in artifacts.items():
        started = time.perf_counter()
        if log is not None and artifact_kind(path)[0] == MCU:  # minutes without a line otherwise
            log(f"verifying {name} on the TensorFlow Lite Micro interpreter, one image at a time ...")
        entries[name] = _verify_one(name, Path(path), gate)
        if log is not None:
            log(progress_line(name, entries[name], time.perf_counter() - started))
    _compare_micro_with_int8_tflite(entries, gate)
    failures = [entry["reason"] for entry in entries.values() if not entry["passed"]]
    return {
        "fashionnet_version": __version__,
        "keras_backend": keras_backend,
        "cpu": cpu,
        "images": len(images),
        "keras_accuracy": float((keras_pred == labels).mean()),
        "tolerances": {
            "onnx_fp32_max_abs_diff": onnx_tolerance,
            "tflite_fp32_max_abs_diff": tflite_tolerance,
            "int8_max_accuracy_drop_points": int8_max_drop_points,
            "int8_min_top1_agreement": int8_min_agreement,
            "dynamic_batch_sizes": list(batch_sizes),
        },
        "artifacts": entries,
        "passed": not failures and bool(entries),
        "failures": failures or ([] if entries else ["no artifacts to verify"]),
    }
