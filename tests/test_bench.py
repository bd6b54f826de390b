"""`fashionnet bench` in a tiny mode: it runs end to end and writes well-formed bench.json and bench.md.

No timed assertions: the numbers depend on the machine and its load; only their presence and sign are checked.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import cli, run_cli


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0


@pytest.mark.export
@pytest.mark.slow
def test_bench_tiny_mode_writes_well_formed_results(tmp_path, exported):
    import keras

    backend = keras.backend.backend()
    out = tmp_path / "bench"
    run = exported[0].parent  # the session's exported run: bench times its model (read-only)
    proc = run_cli("bench", "--out", out, "--backends", backend, "--limit", "300", "--epochs", "2", "--run", run,
                   "--latency-runs", "5", "--throughput-runs", "2", timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "bench.json").read_text())
    assert {"cpu", "settings", "training", "keras_inference", "edge_inference", "artifacts", "edge_predictor",
            "targets", "flops"} <= set(results)  # fmt: skip
    assert results["cpu"]["peak_fp32_gflops"] > 0 and results["cpu"]["peak_assumption"]
    sgemm = results["cpu"]["sgemm_gflops"]
    assert sgemm > 0 and f"**{sgemm:.1f} GFLOP/s**" in (out / "bench.md").read_text()
    rows = [*results["training"][backend]["modes"].values(), *results["keras_inference"].values(),
            *results["edge_inference"].values()]  # fmt: skip
    for row in rows:  # every training and inference row: its rate as a fraction of the measured sgemm rate
        rate = row["gflops"] if "gflops" in row else row["gflops_batch256"]
        assert row["fraction_of_sgemm"] == pytest.approx(rate / sgemm)
    modes = results["training"][backend]["modes"]
    assert {"plain", "fashionnet"} <= set(modes)
    for mode in modes.values():
        assert _positive(mode["images_per_second"]) and _positive(mode["ratio_to_plain"]) and _positive(mode["gflops"])
        assert all(_positive(s) for run in mode["runs"] for s in run["epoch_seconds"])
    assert _positive(results["training"][backend]["peak_rss_mb"])
    keras_inf = results["keras_inference"][backend]
    for key in ("batch1_median_ms", "batch1_p99_ms", "batch256_images_per_second", "peak_rss_mb"):
        assert _positive(keras_inf[key]), key
    names = {e["artifact"] for e in results["edge_inference"].values()}
    assert names == {"model.onnx", "model.int8.onnx", "model.tflite", "model.int8.tflite"}
    for entry in results["edge_inference"].values():
        assert entry["threads"] in (1, 2)
        assert _positive(entry["batch1_median_ms"]) and entry["batch1_p99_ms"] >= entry["batch1_median_ms"]
        assert _positive(entry["batch256_images_per_second"])
    for facts in results["artifacts"].values():
        assert _positive(facts["size_bytes"]) and 0 <= facts["test_accuracy"] <= 1
    assert set(results["edge_predictor"]) == {"model.onnx", "model.int8.onnx"}
    assert all(_positive(e["peak_rss_mb"]) for e in results["edge_predictor"].values())
    assert _positive(results["launcher_peak_rss_mb"])  # recorded: its children's peak-RSS floor
    assert all({"target", "value", "met"} <= set(t) for t in results["targets"])
    markdown = (out / "bench.md").read_text()
    assert markdown.startswith("# fashionnet bench") and "| tensorflow" in markdown or f"| {backend}" in markdown
    assert "## Targets" in markdown and "model.int8.onnx" in markdown


def test_the_bench_launcher_does_not_import_keras(tmp_path):
    """A forked child's ru_maxrss starts at its parent's peak: a keras-sized launcher would inflate every child's."""
    import subprocess
    import sys

    code = ("import sys\nfrom fashionnet.cli import main\ntry:\n    main(['bench', '--out', sys.argv[1], '--backends', "
            "'theano'])\nexcept SystemExit:\n    pass\nprint('keras imported:', 'keras' in sys.modules)")  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "b")], capture_output=True, text=True, timeout=120
    )
    assert "--backends" in proc.stderr  # it got as far as checking the options, where a KERAS_COMMAND imports keras
    assert proc.stdout.strip().endswith("keras imported: False"), proc.stdout + proc.stderr


def test_bench_rejects_unknown_backends_before_any_work(tmp_path):
    proc = cli("bench", "--out", str(tmp_path / "b"), "--backends", "tensorflow,theano")
    assert proc.returncode == 2
    assert "--backends" in proc.stderr and "theano" in proc.stderr
    assert not (tmp_path / "b").exists()


def test_bench_defaults_to_the_installed_backends(monkeypatch):
    """After the README's install (one backend), `fashionnet bench` measures what is there instead of failing."""
    import importlib.util

    from fashionnet.bench import machine as bench

    real_find_spec = importlib.util.find_spec
    installed = [b for b in bench.BACKENDS if real_find_spec(b) is not None]
    assert bench.resolve_backends(None) == installed
    hidden = installed[0]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == hidden else real_find_spec(name))
    if installed[1:]:
        assert bench.resolve_backends(None) == installed[1:]
    else:
        with pytest.raises(bench.ConfigError, match=r"no Keras backend installed: install one of fashionnet\[tensor"):
            bench.resolve_backends(None)
    with pytest.raises(bench.ConfigError, match=f"{hidden} not installed"):
        bench.resolve_backends(hidden)


def _results(rates: dict, amx: bool, int8_speedup: float, batch1_ms: float, improved_ratio: float | None = None):
    training = {}
    for backend, rate in rates.items():
        modes = {"fashionnet": {"images_per_second": rate, "ratio_to_plain": 1.1}}
        if improved_ratio is not None:
            modes["fashionnet_improved"] = {"images_per_second": rate / 2, "ratio_to_plain": improved_ratio}
        training[backend] = {"modes": modes, "peak_rss_mb": 1000}
    return {
        "cpu": {"amx": amx},
        "training": training,
        "int8_speedup": {"onnx@2": int8_speedup},
        "edge_inference": {"model.int8.onnx@1": {"batch1_median_ms": batch1_ms}},
    }


def _met(targets: list[dict], start: str) -> tuple[float, bool]:
    (found,) = [t for t in targets if t["target"].startswith(start)]
    return found["value"], found["met"]


def test_bench_targets_are_judged_per_backend_and_per_cpu_kind():
    from fashionnet.bench.targets import judge_targets

    targets = judge_targets(_results({"tensorflow": 600, "jax": 390, "torch": 410}, False, 2.2, 0.12, 1.45))
    assert _met(targets, "jax training >= 1/1.5 of tensorflow's") == (pytest.approx(0.65), False)
    assert _met(targets, "torch training >= 1/1.5 of tensorflow's") == (pytest.approx(410 / 600), True)
    assert _met(targets, "every backend within 1.5x of the fastest (slowest: jax)") == (pytest.approx(600 / 390), False)
    assert _met(targets, "int8 ONNX >= 2.5x fp32 ONNX at batch 256, 2 threads (CPU without AMX)") == (2.2, False)
    assert _met(targets, "int8 ONNX batch-1 median <= 0.1 ms") == (0.12, False)
    assert _met(targets, "torch: improved recipe, fashionnet trainer >= 1.4x") == (1.45, True)
    assert _met(targets, "torch: improved recipe, fashionnet trainer >= 1.0x") == (1.45, True)
    # 35 epochs x 48,000 images at 600 images/s: 46.7 minutes
    main_job = "tensorflow: the main job's 35 epochs at this rate <= 20 min"
    assert _met(targets, main_job) == (pytest.approx(46.67, 1e-3), False)

    targets = judge_targets(_results({"tensorflow": 600, "jax": 420}, True, 2.2, 0.09))
    assert _met(targets, "jax training >= 1/1.5 of tensorflow's") == (pytest.approx(0.7), True)
    assert _met(targets, "int8 ONNX >= 2.0x fp32 ONNX at batch 256, 2 threads (AMX CPU)") == (2.2, True)
    assert _met(targets, "int8 ONNX batch-1 median <= 0.1 ms") == (0.09, True)
    fast = judge_targets(_results({"tensorflow": 1500}, True, 2.2, 0.09))
    assert _met(fast, main_job) == (pytest.approx(18.67, 1e-3), True)
    assert not [t for t in targets if "improved" in t["target"] or "torch" in t["target"]]  # not measured: no line
