"""The int8 ONNX settings against each other and fp32, measured in one run (docs/export.md, docs/benchmarks.md).

    python -m benchmarks.quant_bench RUN/export/model.onnx [--rounds 3] [--profile]

Quantizes the fp32 model with the export's settings and the alternatives (fashionnet.convert.quantize.Settings:
8-bit weights, an int8 classifier, int8 activations; MinMax calibration on the export's 1,000 training images),
then times each on onnxruntime: images/s at batch 256 with 2 threads (median of 39 calls, as many as the 10,000
test images fill), and the median batch-1 latency with 1 thread (best of ``--rounds``), and prints each model's
top-1 agreement with fp32 (= Keras, by the parity gate), test accuracy and the ratios to fp32. Agreement on this
CPU only: `python tests/integration/avx2.py` measures an AVX2-only one.

``--profile``: where each model's batch-256 time goes instead, from onnxruntime's own profiler: milliseconds per
batch by the op type onnxruntime actually ran (after its graph optimizations have fused the QDQ pairs) and the
Keras layer it came from.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import tempfile
from pathlib import Path

import numpy as np

from fashionnet.core.timing import call_times, summary_ms, throughput


def _session(path: str, threads: int, profile_prefix: str | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    if profile_prefix:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _runner(path: str, threads: int):
    session = _session(path, threads)
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def _throughput(path: str, images: np.ndarray, batch: int = 256) -> float:
    """Images/s from as many batch-``batch`` calls as the test images fill (39 of 10,000)."""
    return throughput(_runner(path, 2), images[:batch], runs=len(images) // batch, warmup=1)


def _latency_ms(path: str, images: np.ndarray, calls: int = 300) -> float:
    return summary_ms(call_times(_runner(path, 1), images[:1], calls, warmup=50))["median_ms"]


def op_profile(path: str, images: np.ndarray, batch: int = 256, runs: int = 20, warmup: int = 2) -> dict:
    """onnxruntime's profile of ``runs`` batch-``batch`` calls on 2 threads, after ``warmup`` calls.

    Returns {"batch": batch, "ms_per_batch": wall ms per call, "ops": {"op type (layer)": kernel ms per call}}, op
    types as onnxruntime ran them (e.g. QLinearConv after it fused a DequantizeLinear -> Conv -> QuantizeLinear chain).
    """
    with tempfile.TemporaryDirectory(prefix="fashionnet-ort-profile-") as scratch:
        session = _session(path, 2, profile_prefix=str(Path(scratch) / "profile"))
        feed = {session.get_inputs()[0].name: images[:batch]}
        for _ in range(warmup + runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    calls = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])[warmup:]
    start = calls[0]["ts"]
    ops: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= start:
            ops[f"{event['args']['op_name']} ({_layer(event['name'].removesuffix('_kernel_time'))})"] += (
                event["dur"] / 1e3 / len(calls)
            )
    ms_per_batch = sum(e["dur"] for e in calls) / 1e3 / len(calls)
    return {"batch": batch, "ms_per_batch": ms_per_batch, "ops": dict(ops.most_common())}


def _layer(node: str) -> str:
    """The Keras layer an exported node came from ("fashionnet_1/conv2_1/BiasAdd_token_24" -> "conv2"), else the
    node's own name (nodes the converters or onnxruntime added, e.g. "ReorderInput")."""
    parts = node.split("/")
    return re.sub(r"_\d+$", "", parts[1]) if len(parts) > 2 else node


def format_profile(label: str, profile: dict) -> str:
    total = sum(profile["ops"].values())
    lines = [f"{label}: {profile['ms_per_batch']:.2f} ms per batch of {profile['batch']} (kernels {total:.2f} ms)"]
    lines += [f"  {ms:8.3f} ms {100 * ms / total:5.1f} %  {op}" for op, ms in profile["ops"].items()]
    return "\n".join(lines)


def _settings() -> dict:
    from onnxruntime.quantization import QuantType

    from fashionnet.convert.quantize import EXPORTED, Settings

    return {
        "int8 exported (7-bit w, float classifier)": EXPORTED,
        "8-bit weights, float classifier": Settings(reduce_range=False),
        "8-bit weights, int8 classifier (before #29)": Settings(reduce_range=False, float_classifier=False),
        "int8 activations (else as exported)": Settings(activation_type=QuantType.QInt8),
    }


def main(argv: list[str] | None = None) -> int:
    from fashionnet.convert.formats import CALIBRATION_IMAGES, CALIBRATION_SEED
    from fashionnet.convert.quantize import quantize_onnx
    from fashionnet.core.data import load_data, preprocess_images
    from fashionnet_edge import cpu_name

    parser = argparse.ArgumentParser(prog="python -m benchmarks.quant_bench", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="an exported fp32 model.onnx")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--profile", action="store_true", help="print where the batch-256 time goes, per op and layer")
    args = parser.parse_args(argv)

    (train_images, _), (test_images, test_labels) = load_data(args.data_dir)
    images = preprocess_images(test_images)
    pick = np.random.default_rng(CALIBRATION_SEED).choice(len(train_images), CALIBRATION_IMAGES, replace=False)
    calibration = preprocess_images(train_images[np.sort(pick)])
    with tempfile.TemporaryDirectory(prefix="fashionnet-quant-bench-") as scratch:
        models = {"fp32": str(args.model)}
        for index, (label, settings) in enumerate(_settings().items()):
            path = Path(scratch) / f"int8-{index}.onnx"
            quantize_onnx(args.model, path, calibration, {}, settings)
            models[label] = str(path)
        if args.profile:
            print(f"CPU: {cpu_name()}; onnxruntime profiler, batch 256 on 2 threads, mean of 20 calls")
            for label, path in models.items():
                print(format_profile(label, op_profile(path, images)))
            return 0
        best = {label: [0.0, float("inf")] for label in models}
        for _ in range(args.rounds):  # interleaved: a noisy neighbour slows every model alike
            for label, path in models.items():
                best[label][0] = max(best[label][0], _throughput(path, images))
                best[label][1] = min(best[label][1], _latency_ms(path, images))
        print(f"CPU: {cpu_name()}; onnxruntime, batch 256 on 2 threads, batch 1 on 1 thread, best of {args.rounds}")
        print("top-1 as fp32: images whose top-1 is the fp32 model's (the gate proves fp32 = Keras)")
        fp32_top1 = None
        for label, path in models.items():
            session = _session(path, 2)
            probs = np.concatenate([session.run(None, {"image": images[i : i + 500]})[0] for i in range(0, 10000, 500)])
            fp32_top1 = probs.argmax(1) if fp32_top1 is None else fp32_top1
            accuracy = float((probs.argmax(1) == test_labels).mean())
            agree = int((probs.argmax(1) == fp32_top1).sum())
            ips, ms = best[label]
            print(
                f"{label:44s} {ips:7.0f} images/s ({ips / best['fp32'][0]:.2f}x fp32)  batch 1: {ms:.3f} ms "
                f"({best['fp32'][1] / ms:.2f}x fp32)  top-1 as fp32 {agree}/{len(images)}  accuracy {accuracy:.4f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
