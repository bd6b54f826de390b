"""In-browser speed of the web kit next to onnxruntime in Python, measured in one run on one machine.

    python -m benchmarks.web_bench RUN [--out DIR] [--rounds 3]

For each ONNX model of RUN/export (fp32, int8): batch-1 latency and batch-256 throughput in headless Chromium
(onnxruntime-web, WebAssembly, 1 thread: the kit's setting) and in Python (fashionnet_edge.OnnxClassifier,
1 thread), the two interleaved round by round so that a shared machine's noise hits both alike; the figures are
medians over rounds and the ratios come from the same rounds. Writes web_bench.json and web_bench.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from fashionnet.core.timing import call_times

LATENCY_BLOCKS, LATENCY_PER_BLOCK = 10, 50  # batch 1: the page's clock is coarse, so time blocks of calls
THROUGHPUT_BATCH, THROUGHPUT_RUNS = 256, 3


def python_timings(classifier, batch: int, blocks: int, per_block: int) -> list[float]:
    """Milliseconds per call of ``batch`` images, one mean per block (the same protocol as the page's)."""
    x = np.full((batch, 28, 28, 1), 0.5, dtype=np.float32)
    return [s * 1e3 for s in call_times(classifier, x, blocks, warmup=20, per_call=per_block)]


def parity(page, export_dir: Path, key: str, file: str, images: np.ndarray) -> dict:
    """The page's probabilities on ``images`` (uint8) vs Python onnxruntime with its default (fused) kernels and
    with basic optimizations only (the ONNX graph's own arithmetic: no QLinear* fusion in an int8 model)."""
    import onnxruntime as ort

    browser = page.classify(key, images)
    x = images[..., None].astype(np.float32) / 255
    out = {"images": len(images)}
    for name, level in (("default", ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
                        ("graph", ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)):  # fmt: skip
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(export_dir / file), options, providers=["CPUExecutionProvider"])
        python = session.run(None, {session.get_inputs()[0].name: x})[0]
        out[f"python_{name}_top1_agreement"] = float((browser.argmax(1) == python.argmax(1)).mean())
        out[f"python_{name}_max_abs_diff"] = float(np.abs(browser - python).max())
    return out


def measure(run: Path, rounds: int = 3, parity_images: int = 0, data_dir=None, log=print) -> dict:
    import onnxruntime

    from fashionnet.core.machine import cpu_info
    from fashionnet.publish.browser import install_runtime, launch, open_kit
    from fashionnet_edge import OnnxClassifier

    export_dir = Path(run) / "export"
    kit = json.loads((export_dir / "web" / "kit.json").read_text())
    install_runtime(export_dir / "web")
    results = {"run": str(run), "cpu": cpu_info(), "onnxruntime": onnxruntime.__version__, "models": {}}
    with launch() as browser, open_kit(export_dir, browser) as page:
        if not page.open():
            raise RuntimeError(f"the web kit did not load: {page.message()}")
        results["onnxruntime_web"] = page.ort_version()
        results["chromium"] = browser.version
        test_images = None
        if parity_images:
            from fashionnet.core.data import load_data

            test_images = load_data(data_dir)[1][0][:parity_images]
        for model in kit["models"]:
            key, path = model["key"], export_dir / Path(model["file"]).name
            python = OnnxClassifier(path, threads=1)
            agreement = None
            if test_images is not None:
                log(f"{key}: parity on {len(test_images):,} test images")
                agreement = parity(page, export_dir, key, path.name, test_images)
            samples = {name: [] for name in ("web_b1", "python_b1", "web_b256", "python_b256")}
            for r in range(rounds):
                log(f"{key}: round {r + 1}/{rounds}")
                samples["web_b1"].append(statistics.median(page.benchmark(key, 1, LATENCY_BLOCKS, LATENCY_PER_BLOCK)))
                samples["python_b1"].append(
                    statistics.median(python_timings(python, 1, LATENCY_BLOCKS, LATENCY_PER_BLOCK))
                )
                samples["web_b256"].append(min(page.benchmark(key, THROUGHPUT_BATCH, THROUGHPUT_RUNS, 1)))
                samples["python_b256"].append(min(python_timings(python, THROUGHPUT_BATCH, THROUGHPUT_RUNS, 1)))
            ms = {name: statistics.median(values) for name, values in samples.items()}
            results["models"][key] = {
                "file": path.name,
                "web_batch1_ms": ms["web_b1"],
                "python_batch1_ms": ms["python_b1"],
                "web_batch256_images_per_second": THROUGHPUT_BATCH * 1e3 / ms["web_b256"],
                "python_batch256_images_per_second": THROUGHPUT_BATCH * 1e3 / ms["python_b256"],
                "batch1_web_over_python": _ratio(samples["web_b1"], samples["python_b1"]),
                "batch256_python_over_web": _ratio(samples["web_b256"], samples["python_b256"]),
                "rounds": samples,
                "parity": agreement,
            }
        if page.console_errors:
            raise RuntimeError(f"the page logged errors: {page.console_errors}")
    return results


def _ratio(slower: list[float], faster: list[float]) -> float:
    """The median over rounds of each round's ratio: both sides of a ratio were measured moments apart."""
    return statistics.median(a / b for a, b in zip(slower, faster, strict=True))


def format_markdown(r: dict) -> str:
    cpu = r["cpu"]
    rounds = len(next(iter(r["models"].values()))["rounds"]["web_b1"])
    lines = [
        "# Web kit speed: onnxruntime-web in headless Chromium vs onnxruntime in Python",
        "",
        f"CPU: {cpu['model_name']} ({cpu['logical_cpus']} logical CPUs, AVX-512 {'yes' if cpu['avx512'] else 'no'}); "
        f"onnxruntime-web {r['onnxruntime_web']} (WebAssembly, SIMD, 1 thread) in Chromium {r['chromium']}; "
        f"onnxruntime {r['onnxruntime']} in Python, 1 thread. Medians of {rounds} interleaved rounds.",
        "",
        "| model | batch-1 ms: browser | Python | browser / Python "
        "| batch-256 images/s: browser | Python | Python / browser |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, m in r["models"].items():
        lines.append(
            f"| {key} ({m['file']}) | {m['web_batch1_ms']:.3f} | {m['python_batch1_ms']:.3f} | "
            f"{m['batch1_web_over_python']:.2f}x | {m['web_batch256_images_per_second']:,.0f} | "
            f"{m['python_batch256_images_per_second']:,.0f} | {m['batch256_python_over_web']:.2f}x |"
        )
    if {"fp32", "int8"} <= set(r["models"]):
        fp32, int8 = r["models"]["fp32"], r["models"]["int8"]
        web = int8["web_batch256_images_per_second"] / fp32["web_batch256_images_per_second"]
        python = int8["python_batch256_images_per_second"] / fp32["python_batch256_images_per_second"]
        lines += ["", f"int8 / fp32 speed-up at batch 256: browser {web:.2f}x, Python {python:.2f}x."]
    with_parity = {k: m["parity"] for k, m in r["models"].items() if m.get("parity")}
    if with_parity:
        lines += [
            "",
            "Parity, browser vs Python onnxruntime (default = its fused kernels, graph = basic optimizations only):",
            "",
            "| model | images | top-1 agreement: default | max abs dp | top-1 agreement: graph | max abs dp |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for key, p in with_parity.items():
            lines.append(
                f"| {key} | {p['images']:,} | {p['python_default_top1_agreement']:.2%} | "
                f"{p['python_default_max_abs_diff']:.1e} | {p['python_graph_top1_agreement']:.2%} | "
                f"{p['python_graph_max_abs_diff']:.1e} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.web_bench", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="an exported run folder (RUN/export/web/ from `fashionnet export`)")
    parser.add_argument("--out", type=Path, default=Path("bench"), help="output folder (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds (default 3)")
    parser.add_argument(
        "--parity-images", type=int, default=0, help="also compare predictions on the first N test images (default 0)"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="Fashion-MNIST folder (default: $FASHIONNET_DATA)")
    args = parser.parse_args(argv)
    if not (args.run / "export" / "web" / "kit.json").is_file():
        print(
            f"web_bench: error: {args.run}: no export/web/kit.json (run `fashionnet export {args.run}`)",
            file=sys.stderr,
        )
        return 2
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    results = measure(args.run, max(1, args.rounds), args.parity_images, args.data_dir, log=log)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "web_bench.json").write_text(json.dumps(results, indent=2) + "\n")
    text = format_markdown(results)
    (args.out / "web_bench.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
