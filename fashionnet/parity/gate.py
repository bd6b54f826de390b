"""The parity gate: every exported artifact must reproduce Keras's probabilities before it is published.

Backend-agnostic on purpose: only numpy, onnxruntime and ai_edge_litert. The reference probabilities come from
the caller, computed by Keras in the caller's own backend (a jax-trained model is checked against jax Keras).

Checks per artifact, on the whole given set (the 10,000 test images in real use):

* fp32: max |p_artifact - p_keras| <= ONNX_FP32_TOLERANCE / TFLITE_FP32_TOLERANCE, and top-1 equal to Keras on
  every image. The one allowance: an image whose Keras top-2 margin is within 2 x tolerance is a near tie; a
  flip there is the tolerance at work, not a bug, so it is counted and reported, not failed.
* int8: accuracy drop vs Keras fp32 <= INT8_MAX_ACCURACY_DROP_POINTS (top-1 agreement and |dp| are reported).
* all: the batch dimension is dynamic: a slice is re-run at DYNAMIC_BATCH_SIZES and must match the full run.
* TFLite: builtin ops only (no Flex or custom ops).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashionnet.core.data import IMAGE_SHAPE, NUM_CLASSES
from fashionnet.core.timing import call_times
from fashionnet.parity.runtimes import artifact_format, is_micro_model, open_runner, run_batched

__all__ = [
    "ONNX_FP32_TOLERANCE",
    "TFLITE_FP32_TOLERANCE",
    "INT8_MAX_ACCURACY_DROP_POINTS",
    "DYNAMIC_BATCH_SIZES",
    "verify_artifacts",
    "format_report",
    "artifact_kind",
]

# Headroom over float32 reordering noise, far below what a real defect (a wrong weight, a dropped op) moves
# (docs/export.md has the measured differences on every backend).
ONNX_FP32_TOLERANCE = 1e-5
TFLITE_FP32_TOLERANCE = 1e-4  # Keras's own LiteRT export tests use 1e-4; XNNPACK may fuse/reorder differently
INT8_MAX_ACCURACY_DROP_POINTS = 0.5  # percentage points of test accuracy, int8 vs Keras fp32
INT8_BATCH_TOLERANCE = 1e-4  # int8 runs at batch 1/7 vs the full batch (requantization is per-tensor, not batch)
DYNAMIC_BATCH_SIZES = (1, 7)
DYNAMIC_SLICE = 21  # images re-run at each size in DYNAMIC_BATCH_SIZES
RUN_BATCH = 500  # chunk for the full-set run (bounds memory: conv1 activations are 100 KB per image)
LATENCY_RUNS = 50


def artifact_kind(path: Path) -> tuple[str, str]:
    """(format, precision) from the file name: model.onnx -> (onnx, fp32), model.int8.tflite -> (tflite, int8)."""
    if is_micro_model(path):
        return "mcu", "int8"
    return artifact_format(path), ("int8" if ".int8." in Path(path).name else "fp32")


def _latency_ms(path: Path, image: np.ndarray) -> float:
    """Median wall time of one single-image, single-thread inference (after a warm-up)."""
    return statistics.median(call_times(open_runner(path, threads=1), image, LATENCY_RUNS)) * 1e3


# --------------------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------------------


def _check(name: str, value, limit, passed: bool, message: str) -> dict:
    return {"check": name, "value": value, "limit": limit, "passed": bool(passed), "message": message}


def _holds(passed) -> str:
    """The comparison with the limit that is true: a passed check must not read like a failure."""
    return "<=" if passed else ">"


@dataclass(frozen=True)
class _Gate:
    """What every artifact is compared with (Keras's probabilities for the images) and how strictly."""

    reference: np.ndarray  # (N, 10) float32
    images: np.ndarray  # (N, 28, 28, 1) float32
    labels: np.ndarray  # (N,) int64
    tolerances: dict
    batch_sizes: tuple[int, ...]
    measure_latency: bool
    predictions: dict  # artifact name -> its top-1 classes, filled as artifacts are verified

    @property
    def keras_pred(self) -> np.ndarray:
        return self.reference.argmax(axis=1)


def _verify_one(name: str, path: Path, gate: _Gate) -> dict:
    reference, images, labels, keras_pred = gate.reference, gate.images, gate.labels, gate.keras_pred
    tolerances, batch_sizes = gate.tolerances, gate.batch_sizes
    fmt, precision = artifact_kind(path)
    entry = {"file": Path(path).name, "format": fmt, "precision": precision, "size_bytes": Path(path).stat().st_size}
    checks = []
    try:
        runner = open_runner(path)
        probs = run_batched(runner, images, RUN_BATCH)
    except Exception as exc:  # noqa: BLE001 - an artifact that does not even run fails its gate
        entry.update(passed=False, reason=f"{name}: does not run ({type(exc).__name__}: {exc})", checks=[])
        return entry
    if probs.shape != reference.shape:
        entry.update(passed=False, reason=f"{name}: output shape {probs.shape} != Keras {reference.shape}", checks=[])
        return entry
    diff = np.abs(probs.astype(np.float64) - reference.astype(np.float64))
    pred = probs.argmax(axis=1)
    agree = pred == keras_pred
    sorted_ref = np.sort(reference, axis=1)
    margin = sorted_ref[:, -1] - sorted_ref[:, -2]
    accuracy = float((pred == labels).mean())
    keras_accuracy = float((keras_pred == labels).mean())
    drop_points = (keras_accuracy - accuracy) * 100
    entry.update(
        images=len(images),
        top1_agreement=int(agree.sum()),
        top1_agreement_fraction=float(agree.mean()),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        accuracy=accuracy,
        keras_accuracy=keras_accuracy,
        accuracy_drop_points=float(drop_points),
    )
    if precision == "fp32":
        tol = tolerances[fmt]
        entry["tolerance"] = {"max_abs_diff": tol, "top1": f"all images except near ties (margin <= {2 * tol:g})"}
        ok = diff.max() <= tol
        checks.append(
            _check(
                "max_abs_diff",
                entry["max_abs_diff"],
                tol,
                ok,
                f"{name}: max |\u0394p| {diff.max():.1e} {_holds(ok)} tolerance {tol:.0e}",
            )
        )
        flips = ~agree
        near_tie = flips & (margin <= 2 * tol)
        real = int((flips & ~near_tie).sum())
        entry["top1_near_tie_flips"] = int(near_tie.sum())
        checks.append(
            _check(
                "top1_agreement",
                real,
                0,
                real == 0,
                f"{name}: top-1 differs from Keras on {real} of {len(images)} images beyond near ties "
                f"{_holds(real == 0)} 0 allowed (near-tie flips: {int(near_tie.sum())})",
            )
        )
        batch_tol = tol
    else:
        limit = tolerances["int8_drop_points"]
        entry["tolerance"] = {"accuracy_drop_points": limit}
        checks.append(
            _check(
                "accuracy_drop",
                entry["accuracy_drop_points"],
                limit,
                drop_points <= limit,
                f"{name}: accuracy drop {drop_points:+.2f} points {_holds(drop_points <= limit)} limit {limit} "
                f"points (accuracy {accuracy:.2%}, Keras {keras_accuracy:.2%})",
            )
        )
        batch_tol = INT8_BATCH_TOLERANCE
    gate.predictions[name] = pred
    if fmt == "mcu":
        return _finish_micro(entry, checks, runner, path, gate)
    # Dynamic batch: re-run a slice at other batch sizes; must match the full run's rows.
    part = images[:DYNAMIC_SLICE]
    worst, error = 0.0, None
    for size in batch_sizes:
        try:
            again = run_batched(open_runner(path), part, size)
            worst = max(worst, float(np.abs(again - probs[: len(part)]).max()))
        except Exception as exc:  # noqa: BLE001
            error = f"{type(exc).__name__}: {exc}"
            break
    entry["dynamic_batch"] = {"sizes": list(batch_sizes), "images": len(part), "max_abs_diff": worst, "error": error}
    ok = error is None and worst <= batch_tol
    checks.append(
        _check(
            "dynamic_batch",
            worst,
            batch_tol,
            ok,
            f"{name}: batch sizes {list(batch_sizes)} "
            + (
                f"fail ({error})"
                if error
                else f"differ from the full run by {worst:.1e} {_holds(ok)} tolerance {batch_tol:.0e}"
            ),
        )
    )
    if fmt == "tflite":
        ops = runner.ops()
        entry["ops"] = ops
        bad = [op for op in ops if op.startswith("Flex") or op in ("CUSTOM", "Custom")]
        if bad:
            ops_text = f"non-builtin ops {bad} (Flex/custom need extra runtimes)"
        elif ops:
            ops_text = f"builtin ops only ({len(ops)} op types, no Flex/custom)"
        else:
            ops_text = "op list not inspectable (no Flex/custom op seen)"
        checks.append(_check("builtin_ops", bad, [], not bad, f"{name}: {ops_text}"))
    return _finish(entry, checks, path, gate)


def _finish(entry: dict, checks: list, path: Path, gate: _Gate) -> dict:
    if gate.measure_latency:
        entry["latency_ms_batch1"] = _latency_ms(path, gate.images[:1])
    failed = [c["message"] for c in checks if not c["passed"]]
    entry["checks"] = checks
    entry["passed"] = not failed
    entry["reason"] = "; ".join(failed) if failed else "all checks passed"
    return entry


MICRO_RAM_BUDGETS = (256 * 1024, 512 * 1024, 1024 * 1024)  # bytes of RAM of common microcontroller boards
MICRO_FLASH_BUDGETS = (1024 * 1024, 2 * 1024 * 1024)


def _finish_micro(entry: dict, checks: list, runner, path: Path, gate: _Gate) -> dict:
    """The microcontroller model: batch 1 by design (no dynamic-batch check); its memory needs, measured."""
    arena = runner.arena_bytes_needed()
    flash = entry["size_bytes"]
    entry["ops"] = runner.ops()
    entry["quantization"] = {k: {"scale": v[0], "zero_point": v[1]} for k, v in runner.quantization.items()}
    entry["arena_bytes"] = arena
    entry["flash_bytes"] = flash
    entry["fits"] = {
        "ram": {
            (f"{b // 1024} KB" if b < 1024 * 1024 else f"{b // (1024 * 1024)} MB"): arena < b for b in MICRO_RAM_BUDGETS
        },
        "flash": {f"{b // (1024 * 1024)} MB": flash < b for b in MICRO_FLASH_BUDGETS},
    }
    bad = [op for op in entry["ops"] if not op.isupper() or op == "CUSTOM"]
    checks.append(_check("builtin_ops", bad, [], not bad, f"{entry['file']}: TensorFlow Lite Micro ops {entry['ops']}"))
    return _finish(entry, checks, path, gate)


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
    from fashionnet import __version__

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
    tolerances = {"onnx": onnx_tolerance, "tflite": tflite_tolerance, "int8_drop_points": int8_max_drop_points}
    gate = _Gate(reference, images, labels, tolerances, tuple(batch_sizes), measure_latency, {})
    keras_pred = gate.keras_pred
    entries = {}
    for name, path in artifacts.items():
        started = time.perf_counter()
        entries[name] = _verify_one(name, Path(path), gate)
        if log is not None:
            log(_progress_line(name, entries[name], time.perf_counter() - started))
    micro, int8_tflite = entries.get("model.mcu.tflite"), gate.predictions.get("model.int8.tflite")
    if micro is not None and int8_tflite is not None and "model.mcu.tflite" in gate.predictions:
        micro["top1_agreement_with_int8_tflite"] = int((gate.predictions["model.mcu.tflite"] == int8_tflite).sum())
    failures = [entry["reason"] for entry in entries.values() if not entry["passed"]]
    return {
        "fashionnet_version": __version__,
        "keras_backend": keras_backend,
        "images": len(images),
        "keras_accuracy": float((keras_pred == labels).mean()),
        "tolerances": {
            "onnx_fp32_max_abs_diff": onnx_tolerance,
            "tflite_fp32_max_abs_diff": tflite_tolerance,
            "int8_max_accuracy_drop_points": int8_max_drop_points,
            "dynamic_batch_sizes": list(batch_sizes),
        },
        "artifacts": entries,
        "passed": not failures and bool(entries),
        "failures": failures or ([] if entries else ["no artifacts to verify"]),
    }


def _progress_line(name: str, entry: dict, seconds: float) -> str:
    """One line per verified artifact, e.g. 'verified model.onnx: pass, 10000/10000 top-1, max |dp| 7.2e-07 (3.1 s)'."""
    result = "pass" if entry["passed"] else "FAIL"
    if "top1_agreement" not in entry:  # did not run, or the wrong output shape: the reason says which
        return f"verified {name}: {result}, {entry['reason']} ({seconds:.1f} s)"
    return (
        f"verified {name}: {result}, {entry['top1_agreement']}/{entry['images']} top-1, "
        f"max |\u0394p| {entry['max_abs_diff']:.1e} ({seconds:.1f} s)"
    )


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _num(x, fmt: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _signed(n: int) -> str:
    return f"+ {n}" if n >= 0 else f"- {-n}"


def _micro_lines(report: dict) -> list[str]:
    """The microcontroller model's memory needs against common budgets, when the export made one."""
    lines = []
    for name, a in report["artifacts"].items():
        if a.get("format") != "mcu" or "arena_bytes" not in a:
            continue
        ram = ", ".join(f"{budget} {'yes' if ok else 'no'}" for budget, ok in a["fits"]["ram"].items())
        flash = ", ".join(f"{budget} {'yes' if ok else 'no'}" for budget, ok in a["fits"]["flash"].items())
        agree = a.get("top1_agreement_with_int8_tflite")
        q_in, q_out = a["quantization"]["input"], a["quantization"]["output"]
        lines += [
            "",
            f"Microcontroller model {name} (TensorFlow Lite Micro interpreter, int8 input and output, batch 1):",
            f"- RAM: tensor arena {a['arena_bytes']:,} bytes, the least it ran in (bisection, 16-byte steps); "
            f"fits in {ram}",
            f"- flash: the model's {a['flash_bytes']:,} bytes (plus the program); fits in {flash}",
            f"- input: q = round(pixel / {q_in['scale']:.8g}) {_signed(q_in['zero_point'])}, pixel in [0, 1]; "
            f"output: p = {q_out['scale']:.8g} * (q {_signed(-q_out['zero_point'])})",
            f"- ops: {', '.join(a['ops'])}",
        ]
        if agree is not None:
            lines.append(f"- top-1 as model.int8.tflite (LiteRT) on {agree}/{a['images']} images")
    return lines


def format_report(report: dict) -> str:
    """The parity report as a Markdown table (readable in a terminal too), with a legend for its terse columns."""
    sizes = "/".join(map(str, report["tolerances"]["dynamic_batch_sizes"]))
    batch_column = f"max dp at batch {sizes} vs full"
    lines = [
        f"Parity of exported artifacts vs Keras ({report.get('keras_backend') or '?'} backend"
        + (f", model trained on {report['source_backend']}" if report.get("source_backend") else "")
        + f"), {report['images']} test images, Keras accuracy {report['keras_accuracy']:.2%}",
        "",
        "| artifact | size | top-1 agree | max abs dp | mean abs dp | tolerance | accuracy | drop (pts) "
        f"| {batch_column} | ms/image | result |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for name, a in report["artifacts"].items():
        if "top1_agreement" not in a:
            lines.append(f"| {name} | {_size(a['size_bytes'])} | - | - | - | - | - | - | - | - | FAIL |")
            continue
        tol = a["tolerance"]
        tol_text = (
            f"dp <= {tol['max_abs_diff']:.0e}" if "max_abs_diff" in tol else f"drop <= {tol['accuracy_drop_points']}"
        )
        agree = f"{a['top1_agreement']}/{a['images']}"
        if a.get("top1_near_tie_flips"):
            agree += f" ({a['top1_near_tie_flips']} near-tie)"
        batch = a.get("dynamic_batch", {})
        batch_text = "error" if batch.get("error") else _num(batch.get("max_abs_diff"), ".0e")
        if a.get("format") == "mcu":
            batch_text = "batch 1"
        lines.append(
            f"| {name} | {_size(a['size_bytes'])} | {agree} | {a['max_abs_diff']:.1e} | {a['mean_abs_diff']:.1e} "
            f"| {tol_text} | {a['accuracy']:.2%} | {a['accuracy_drop_points']:+.2f} | {batch_text} "
            f"| {_num(a.get('latency_ms_batch1'), '.3f')} | {'pass' if a['passed'] else 'FAIL'} |"
        )
    slice_images = next(
        (a["dynamic_batch"]["images"] for a in report["artifacts"].values() if "dynamic_batch" in a), DYNAMIC_SLICE
    )
    lines += [
        "",
        "Columns: dp = |p_artifact - p_keras| over every probability; drop (pts) = Keras accuracy minus the "
        f"artifact's; {batch_column} = max dp when the first {slice_images} images are re-run at batch sizes "
        f"{sizes.replace('/', ' and ')} vs the full run (proves the batch dimension is dynamic); ms/image = median "
        f"single-image latency on 1 thread ({LATENCY_RUNS} runs; - = not measured).",
    ]
    lines += _micro_lines(report)
    lines.append("")
    if report["passed"]:
        lines.append("Result: PASS: every artifact matches Keras within its tolerance.")
    else:
        lines.append("Result: FAIL")
        lines += [f"- {reason}" for reason in report["failures"]]
    return "\n".join(lines)
