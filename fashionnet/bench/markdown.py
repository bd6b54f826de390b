"""bench.md: the results of ``run_benchmark`` (bench.json) as Markdown tables, one function per section."""

from __future__ import annotations

from fashionnet.core.machine import describe_kernel_settings
from fashionnet.core.recipes import ASSIGNMENT, split_sizes

INFERENCE_HEADER = "| runtime | model | threads | batch-1 median ms | batch-1 p99 ms | batch-256 images/s |"


def _f(x, fmt=".1f") -> str:
    return "-" if x is None else format(x, fmt)


def _yes(flag) -> str:
    return "yes" if flag else "no"


def format_markdown(r: dict) -> str:
    lines = _header(r) + _training(r) + _inference(r) + _improved(r)
    if r.get("int8_speedup"):
        lines += ["", "int8 / fp32 throughput at batch 256: " + ", ".join(
            f"{k} threads {v:.2f}x" for k, v in r["int8_speedup"].items())]  # fmt: skip
    lines += _artifacts(r) + _edge_predictor(r) + _targets(r)
    lines += ["", f"Elapsed: {r['elapsed_s']:.0f} s."]
    return "\n".join(lines)


def _header(r: dict) -> list[str]:
    cpu = r["cpu"]
    s = r["settings"]
    n_train, n_validation = split_sizes(s["limit"], ASSIGNMENT.validation_split)
    return [
        "# fashionnet bench",
        "",
        f"CPU: {cpu['model_name']} ({cpu['logical_cpus']} logical CPUs, {cpu['ghz']} GHz, "
        f"AVX-512 {_yes(cpu['avx512'])}, AVX-512 BF16 {_yes(cpu['avx512_bf16'])}, "
        f"VNNI {_yes(cpu.get('avx512_vnni'))}, AMX {_yes(cpu.get('amx'))}); "
        f"measured fp32 rate (numpy sgemm 2048², all threads) **{_f(cpu.get('sgemm_gflops'))} GFLOP/s**; "
        f"assumed fp32 peak {cpu['peak_fp32_gflops']} GFLOP/s = {cpu['peak_assumption']}.",
        f"Kernel settings: {describe_kernel_settings(r.get('kernel_settings'))}.",
        f"Model: {r['run']['source']}. Settings: {s['limit']} training images ({n_train} train / "
        f"{n_validation} validation), {s['epochs']} epochs (epoch 1 excluded), batch {ASSIGNMENT.batch_size}, "
        f"{s['repeats']} repeat(s); latency over {s['latency_runs']} calls, throughput over "
        f"{s['throughput_runs']} batches of 256. FLOP/image: forward {r['flops']['forward_per_image'] / 1e6:.1f} M, "
        f"training {r['flops']['train_per_image'] / 1e6:.1f} M.",
    ]


def _training(r: dict) -> list[str]:
    lines = [
        "",
        "## Training (steady state, images/s; ratio = the mode / plain Keras running the same recipe, same process)",
        "",
        "| backend | mode | images/s | ratio | GFLOP/s | % of sgemm | % of peak | epoch seconds | process peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for backend, t in r["training"].items():
        for mode, m in t["modes"].items():
            secs = "; ".join(",".join(f"{x:.2f}" for x in run["epoch_seconds"]) for run in m["runs"])
            lines.append(
                f"| {backend} | {mode} | {m['images_per_second']:.0f} | {m['ratio_to_plain']:.2f} | "
                f"{m['gflops']:.1f} | {_pct(m.get('fraction_of_sgemm'))} | "
                f"{_f(m['fraction_of_peak'] and 100 * m['fraction_of_peak'])} | {secs} | "
                f"{t['peak_rss_mb']:.0f} MB |"
            )
    return lines


def _pct(fraction) -> str:
    return "-" if fraction is None else f"{100 * fraction:.0f} %"


def _runtime(artifact: str) -> str:
    return "onnxruntime" if artifact.endswith(".onnx") else "LiteRT"


def _inference(r: dict) -> list[str]:
    lines = [
        "",
        "## Inference (batch 1: median / p99 latency; batch 256: throughput)",
        "",
        INFERENCE_HEADER + " GFLOP/s | % of sgemm |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, k in r["keras_inference"].items():
        lines.append(
            f"| keras {backend} (predict_on_batch) | model.keras | all | {k['batch1_median_ms']:.2f} | "
            f"{k['batch1_p99_ms']:.2f} | {k['batch256_images_per_second']:.0f} | {k['gflops_batch256']:.1f} | "
            f"{_pct(k.get('fraction_of_sgemm'))} |"
        )
    for e in r.get("edge_inference", {}).values():
        lines.append(
            f"| {_runtime(e['artifact'])} | {e['artifact']} | {e['threads']} | {e['batch1_median_ms']:.3f} | "
            f"{e['batch1_p99_ms']:.3f} | {e['batch256_images_per_second']:.0f} | {e['gflops_batch256']:.1f} | "
            f"{_pct(e.get('fraction_of_sgemm'))} |"
        )
    return lines


def _improved(r: dict) -> list[str]:
    improved = r.get("improved")
    if not improved:
        return []
    lines = ["", f"## The improved recipe's model (flip-averaged: 2 network calls per image): {improved['run']}",
             "", INFERENCE_HEADER, "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for backend, k in improved["keras_inference"].items():
        lines.append(f"| keras {backend} | model.keras | all | {k['batch1_median_ms']:.2f} | "
                     f"{k['batch1_p99_ms']:.2f} | {k['batch256_images_per_second']:.0f} |")  # fmt: skip
    for e in improved.get("edge_inference", {}).values():
        lines.append(f"| {_runtime(e['artifact'])} | {e['artifact']} | {e['threads']} | {e['batch1_median_ms']:.3f} | "
                     f"{e['batch1_p99_ms']:.3f} | {e['batch256_images_per_second']:.0f} |")  # fmt: skip
    return lines


def _artifacts(r: dict) -> list[str]:
    if not r.get("artifacts"):
        return []
    lines = ["", "## Artifacts", "", "| file | size | test accuracy | drop vs Keras (pts) |", "|---|---:|---:|---:|"]
    for name, a in r["artifacts"].items():
        acc = "-" if a["test_accuracy"] is None else f"{a['test_accuracy']:.2%} ({a['test_images']} images)"
        drop = _f(a["accuracy_drop_points"], "+.2f")
        lines.append(f"| {name} | {a['size_bytes'] / 1e6:.2f} MB | {acc} | {drop} |")
    return lines


def _edge_predictor(r: dict) -> list[str]:
    if not r.get("edge_predictor"):
        return []
    lines = ["", "## Edge predictor (export/fashionnet_edge.py, 10,000 test images)", ""]
    lines += ["| model | peak RSS | wall s |", "|---|---:|---:|"]
    for name, e in r["edge_predictor"].items():
        lines.append(f"| {name} | {e['peak_rss_mb']:.0f} MB | {e['wall_s']:.1f} |")
    return lines


def _targets(r: dict) -> list[str]:
    lines = ["", "## Targets", "", "| target | value | met |", "|---|---:|---|"]
    for t in r["targets"]:
        lines.append(f"| {t['target']} | {t['value']:.2f} | {'yes' if t['met'] else 'no'} |")
    return lines
