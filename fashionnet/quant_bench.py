"""int8 vs uint8 activations in the static QDQ ONNX model, against fp32, measured in one run (docs/benchmarks.md).

    python -m fashionnet.quant_bench RUN/export/model.onnx [--rounds 3]

Quantizes the fp32 model both ways with the export's own settings (fashionnet.export._quantize_onnx: per-channel
int8 weights, MinMax calibration on the same 1,000 training images), then times each on onnxruntime: images/s at
batch 256 with 2 threads over the 10,000 test images, and the median batch-1 latency with 1 thread (best of
``--rounds``), and prints each model's test accuracy and the ratios to fp32.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _session(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _throughput(path: str, images: np.ndarray, batch: int = 256) -> float:
    session = _session(path, 2)
    name = session.get_inputs()[0].name
    session.run(None, {name: images[:batch]})
    started, count = time.perf_counter(), 0
    for i in range(0, len(images) - batch + 1, batch):
        session.run(None, {name: images[i : i + batch]})
        count += batch
    return count / (time.perf_counter() - started)


def _latency_ms(path: str, images: np.ndarray, calls: int = 300) -> float:
    session = _session(path, 1)
    name = session.get_inputs()[0].name
    for i in range(50):
        session.run(None, {name: images[i : i + 1]})
    times = []
    for i in range(calls):
        started = time.perf_counter()
        session.run(None, {name: images[i : i + 1]})
        times.append(time.perf_counter() - started)
    return float(np.median(times)) * 1e3


def main(argv: list[str] | None = None) -> int:
    from onnxruntime.quantization import QuantType

    from fashionnet.data import load_data, preprocess_images
    from fashionnet.export import CALIBRATION_IMAGES, CALIBRATION_SEED, _quantize_onnx
    from fashionnet_edge import _cpu_name

    parser = argparse.ArgumentParser(prog="python -m fashionnet.quant_bench", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="an exported fp32 model.onnx")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    (train_images, _), (test_images, test_labels) = load_data(args.data_dir)
    images = preprocess_images(test_images)
    pick = np.random.default_rng(CALIBRATION_SEED).choice(len(train_images), CALIBRATION_IMAGES, replace=False)
    calibration = preprocess_images(train_images[np.sort(pick)])
    with tempfile.TemporaryDirectory(prefix="fashionnet-quant-bench-") as scratch:
        models = {"fp32": str(args.model)}
        for label, activations in (("int8 activations", QuantType.QInt8), ("uint8 activations", QuantType.QUInt8)):
            path = Path(scratch) / f"{activations.name}.onnx"
            _quantize_onnx(args.model, path, calibration, {}, activation_type=activations)
            models[label] = str(path)
        best = {label: [0.0, float("inf")] for label in models}
        for _ in range(args.rounds):  # interleaved: a noisy neighbour slows every model alike
            for label, path in models.items():
                best[label][0] = max(best[label][0], _throughput(path, images))
                best[label][1] = min(best[label][1], _latency_ms(path, images))
        print(f"CPU: {_cpu_name()}; onnxruntime, batch 256 on 2 threads, batch 1 on 1 thread, best of {args.rounds}")
        for label, path in models.items():
            session = _session(path, 2)
            probs = np.concatenate([session.run(None, {"image": images[i : i + 500]})[0] for i in range(0, 10000, 500)])
            accuracy = float((probs.argmax(1) == test_labels).mean())
            ips, ms = best[label]
            print(
                f"{label:18s} {ips:8.0f} images/s ({ips / best['fp32'][0]:.2f}x fp32)  batch 1: {ms:.3f} ms "
                f"({best['fp32'][1] / ms:.2f}x fp32)  test accuracy {accuracy:.4f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
