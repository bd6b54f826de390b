"""The benchmark's parent process: ``run_benchmark`` starts one child per measurement and writes bench.json/.md.

The parent stays small (no keras): a child's ``ru_maxrss`` starts at its parent's peak, so a large parent would
inflate every child's reported memory.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from fashionnet.bench.markdown import format_markdown
from fashionnet.bench.targets import judge_targets
from fashionnet.bench.workers import PROG, TINY_RUN
from fashionnet.core.child import module_command, raise_from_child, result_of, run_child
from fashionnet.core.machine import bf16_kernels, cpu_info, cpu_summary, kernel_settings, sgemm_gflops
from fashionnet.errors import ConfigError, FashionNetError
from fashionnet.runs import RunPaths

# Multiply-adds x 2 of the assignment's network for one 28x28 image (biases, ReLU, pooling and softmax add <1%):
# conv1 28*28*32*5*5*1, conv2 14*14*72*5*5*32, dense 3528*256, output 256*10.
FORWARD_FLOPS = 2 * (28 * 28 * 32 * 25 + 14 * 14 * 72 * 25 * 32 + 3528 * 256 + 256 * 10)  # 25,645,056
TRAIN_FLOPS = 3 * FORWARD_FLOPS  # forward + backward (gradients w.r.t. inputs and weights): ~3x forward
WORKER_TIMEOUT_S = 3600
EDGE_TIMEOUT_S = 600


class Settings:
    """Default: a few minutes on 2 cores. --full: more images, epochs and repeats."""

    def __init__(self, full=False, limit=None, epochs=None, latency_runs=None, throughput_runs=None, improved=None):
        self.full = full
        self.improved = full if improved is None else improved  # also the improved recipe (training + its model)
        self.limit = limit or (12000 if full else 3000)  # training images, before the validation split
        self.epochs = epochs or (4 if full else 3)  # epoch 1 excluded: 3 epochs give 2 steady-state intervals
        self.repeats = 2 if full else 1  # plain, fashionnet, (plain, fashionnet) in one child
        self.latency_runs = latency_runs or (500 if full else 200)
        self.throughput_runs = throughput_runs or (20 if full else 8)

    def to_dict(self) -> dict:
        return {k: v for k, v in vars(self).items()}


def run_worker(args: list[str], backend: str | None = None, timeout: float = WORKER_TIMEOUT_S) -> tuple[dict, float]:
    """A ``python -m fashionnet.bench --worker ...`` child's result and its peak RSS in MB."""
    env = {"TF_CPP_MIN_LOG_LEVEL": "3"}
    if backend:
        env["KERAS_BACKEND"] = backend
    done = run_child(module_command("fashionnet.bench", *args), env=env, timeout=timeout)
    failure = f"benchmark worker {' '.join(args[:2])} ({backend}) failed"
    raise_from_child(PROG, done, failure, error=FashionNetError)
    result = result_of(done)
    if result is None:
        raise FashionNetError(f"{failure} (exit 0): no result on its stdout")
    return result, done.peak_rss_mb


# --------------------------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------------------------


def run_benchmark(
    out_dir: Path,
    backends: list[str],
    *,
    run: Path | None = None,
    improved_run: Path | None = None,
    data_dir=None,
    settings: Settings | None = None,
    precisions: tuple[str, ...] = ("mixed_bfloat16",),
    test_limit: int | None = None,
    command: str | None = None,
    log=print,
) -> dict:
    """Measure everything and write bench.json and bench.md into out_dir; returns the results."""
    from fashionnet.core.data import find_data_dir

    settings = settings or Settings()
    data_dir = find_data_dir(data_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results = _header(command, settings, backends)
    with tempfile.TemporaryDirectory(prefix="fashionnet-bench-") as scratch:
        run, source = _model_run(run, "assignment", "--run", Path(scratch) / "run", data_dir, test_limit, log)
        results["run"] = {"source": source}
        if settings.improved:
            improved_run, source = _model_run(improved_run, "improved", "--improved-run", Path(scratch) / "improved",
                                              data_dir, test_limit, log)  # fmt: skip
            results["improved"] = {"run": source, "keras_inference": {}}
        for backend in backends:
            _measure_backend(results, backend, (run, improved_run), data_dir, settings, precisions, log)
        _measure_edge(results, (run, improved_run), data_dir, settings, log)
    _sgemm_fractions(results)
    results["int8_speedup"] = _int8_speedups(results["edge_inference"])
    results["targets"] = judge_targets(results)
    results["elapsed_s"] = time.time() - started
    # A child's ru_maxrss starts at its parent's peak (fork copies the high-water mark): record that floor.
    results["launcher_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (out_dir / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "bench.md").write_text(format_markdown(results) + "\n")
    return results


def _header(command: str | None, settings: Settings, backends: list[str]) -> dict:
    """The results' first keys: how bench was run, and on what."""
    return {
        "command": command,
        "settings": settings.to_dict(),
        "cpu": {**cpu_info(), "summary": cpu_summary(), "sgemm_gflops": round(sgemm_gflops(), 1)},
        "kernel_settings": kernel_settings(),
        "python": platform.python_version(),
        "backends": backends,
        "flops": {"forward_per_image": FORWARD_FLOPS, "train_per_image": TRAIN_FLOPS},
        "training": {},
        "keras_inference": {},
    }


def _measure_backend(results: dict, backend: str, runs: tuple, data_dir, settings: Settings, precisions, log) -> None:
    """Training speed of ``backend``, then Keras inference of each run's model in it."""
    run, improved_run = runs
    log(f"training {backend}: {settings.limit} images, {settings.epochs} epochs, plain vs fashionnet ...")
    # bf16 only where it can pay: tensorflow's oneDNN on AVX-512 BF16 or AMX (emulated elsewhere: docs/benchmarks.md)
    bf16 = bf16_kernels()
    wanted = ",".join(precisions) if backend == "tensorflow" and bf16 else ""
    peak = results["cpu"]["peak_fp32_gflops"] * 1e9
    results["training"][backend] = _training(backend, data_dir, settings, wanted, peak)

    log(f"keras inference {backend} ...")
    results["keras_inference"][backend] = _keras_inference(run, backend, data_dir, settings)
    if settings.improved:
        log(f"keras inference {backend}, the improved recipe's flip-averaged model ...")
        results["improved"]["keras_inference"][backend] = _keras_inference(
            improved_run,
            backend,
            data_dir,
            settings,
            flops=2 * FORWARD_FLOPS,  # image and mirror image
        )


def _sgemm_fractions(results: dict) -> None:
    """Every training and inference row's achieved rate as a fraction of the CPU's measured sgemm rate."""
    sgemm = results["cpu"]["sgemm_gflops"]
    improved = results.get("improved", {})
    rows = [mode for t in results["training"].values() for mode in t["modes"].values()]
    for source in (results, improved):
        rows += [*source.get("keras_inference", {}).values(), *source.get("edge_inference", {}).values()]
    for row in rows:
        rate = row["gflops"] if "gflops" in row else row["gflops_batch256"]
        row["fraction_of_sgemm"] = rate / sgemm if sgemm else None


def _training(backend: str, data_dir, settings: Settings, precisions: str, peak: float) -> dict:
    """Every training mode of one backend, in one child, with its rate against plain Keras and the CPU's peak."""
    data, rss = run_worker(
        ["--worker", "train", "--data-dir", str(data_dir), "--limit", str(settings.limit),
         "--epochs", str(settings.epochs), "--repeats", str(settings.repeats), "--precisions", precisions]
        + (["--improved"] if settings.improved else []),
        backend,
    )  # fmt: skip
    modes = data["modes"]
    for name, mode in modes.items():
        # each recipe against plain Keras running the same recipe, in the same process
        mode["ratio_to_plain"] = mode["images_per_second"] / modes[_plain_of(name)]["images_per_second"]
        mode["gflops"] = mode["images_per_second"] * TRAIN_FLOPS / 1e9  # the improved network: within 1%
        mode["fraction_of_peak"] = mode["images_per_second"] * TRAIN_FLOPS / peak if peak else None
    return {"modes": modes, "peak_rss_mb": rss}


def _plain_of(mode: str) -> str:
    return "plain_improved" if mode.endswith("_improved") else "plain"


def _measure_edge(results: dict, runs: tuple, data_dir, settings: Settings, log) -> None:
    """The exported artifacts: runtimes' speed, file facts, and the edge predictor's memory."""
    run, improved_run = runs
    results["edge_inference"], results["artifacts"] = _edge_inference(run, data_dir, settings, log)
    if results["edge_inference"]:
        log("edge predictor peak RSS (10,000 test images) ...")
        results["edge_predictor"] = _edge_rss(run, data_dir)
    else:
        results["edge_predictor"] = {}
    if settings.improved:
        results["improved"]["edge_inference"], results["improved"]["artifacts"] = _edge_inference(
            improved_run, data_dir, settings, log, flops=2 * FORWARD_FLOPS
        )


def _model_run(run, recipe: str, option: str, scratch: Path, data_dir, test_limit, log) -> tuple[Path, str]:
    """The exported run whose model is timed, and where it came from: the one given, or a tiny one of ``recipe``."""
    if run is None:
        images, epochs = TINY_RUN[recipe]
        log(f"no --run for the {recipe} recipe: a tiny model ({epochs} epochs, {images} images), exported ...")
        tiny = ["--worker", "tiny-run", "--data-dir", str(data_dir), "--model", str(scratch), "--recipe", recipe]
        run_worker(tiny + (["--test-limit", str(test_limit)] if test_limit else []), os.environ.get("KERAS_BACKEND"))
        source = f"tiny {recipe} model trained by bench: {epochs} epochs on {images} images"
        run = scratch
    else:
        source = str(run)
    run = Path(run)
    if not RunPaths(run).model.is_file():
        raise ConfigError(f"{option} {run}: no model.keras")
    return run, source


# --------------------------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------------------------


def _keras_inference(run: Path, backend: str, data_dir, settings: Settings, flops: int = FORWARD_FLOPS) -> dict:
    data, rss = run_worker(
        ["--worker", "keras-infer", "--data-dir", str(data_dir), "--model", str(RunPaths(run).model),
         "--latency-runs", str(settings.latency_runs), "--throughput-runs", str(settings.throughput_runs)],
        backend,
    )  # fmt: skip
    data["peak_rss_mb"] = rss
    data["gflops_batch256"] = data["batch256_images_per_second"] * flops / 1e9
    return data


def _edge_inference(run: Path, data_dir, settings: Settings, log, flops: int = FORWARD_FLOPS) -> tuple[dict, dict]:
    exported = RunPaths(run).export_dir
    artifacts = sorted(exported.glob("model*.onnx")) + sorted(exported.glob("model*.tflite"))
    if not artifacts:
        log(f"no exported artifacts in {exported}: edge inference skipped")
        return {}, {}
    log(f"edge inference ({run.name}): onnxruntime and LiteRT, 1 and 2 threads ...")
    data, _ = run_worker(
        ["--worker", "edge-infer", "--data-dir", str(data_dir), "--artifacts", *map(str, artifacts),
         "--latency-runs", str(settings.latency_runs), "--throughput-runs", str(settings.throughput_runs)],
    )  # fmt: skip
    for entry in data["results"].values():
        entry["gflops_batch256"] = entry["batch256_images_per_second"] * flops / 1e9
    return data["results"], _artifact_facts(run, artifacts)


def _artifact_facts(run: Path, artifacts: list[Path]) -> dict:
    parity_path = RunPaths(run).parity
    parity = json.loads(parity_path.read_text()) if parity_path.is_file() else {"artifacts": {}}
    facts = {}
    for path in artifacts:
        entry = parity["artifacts"].get(path.name, {})
        facts[path.name] = {
            "size_bytes": path.stat().st_size,
            "test_accuracy": entry.get("accuracy"),
            "keras_accuracy": entry.get("keras_accuracy"),
            "accuracy_drop_points": entry.get("accuracy_drop_points"),
            "test_images": entry.get("images"),
        }
    return facts


def _int8_speedups(edge: dict) -> dict:
    out = {}
    for fmt in ("onnx", "tflite"):
        for threads in (1, 2):
            fp32, int8 = edge.get(f"model.{fmt}@{threads}"), edge.get(f"model.int8.{fmt}@{threads}")
            if fp32 and int8:
                out[f"{fmt}@{threads}"] = int8["batch256_images_per_second"] / fp32["batch256_images_per_second"]
    return out


def _edge_rss(run: Path, data_dir) -> dict:
    """Peak RSS and wall time of the edge predictor kit on the 10,000 test images, per fp32/int8 ONNX model."""
    import fashionnet_edge
    from fashionnet.core.data import FILES, find_data_dir

    images = find_data_dir(data_dir) / FILES["test_images"].name
    kit = Path(fashionnet_edge.__file__)  # this checkout's kit (RUN/export/ holds the copy from export time)
    out = {}
    for name in ("model.onnx", "model.int8.onnx"):
        model = RunPaths(run).export_dir / name
        if not model.is_file():
            continue
        done = run_child([sys.executable, str(kit), str(model), str(images)], timeout=EDGE_TIMEOUT_S)
        if done.returncode != 0:
            raise FashionNetError(f"edge predictor on {name} failed (exit {done.returncode}): {done.stderr[-500:]}")
        out[name] = {"peak_rss_mb": done.peak_rss_mb, "wall_s": done.wall_s, "images": 10000}
    return out
