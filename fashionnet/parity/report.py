"""The parity report as text: a progress line per verified artifact, and parity.md's Markdown table."""

from __future__ import annotations

import math

from fashionnet.convert.formats import MCU
from fashionnet.parity.checks import DYNAMIC_SLICE, LATENCY_RUNS


def progress_line(name: str, entry: dict, seconds: float) -> str:
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
        if a.get("format") != MCU or "arena_bytes" not in a:
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
            f"- flash: the model's {a['flash_bytes']:,} bytes + {a['flash_program_reserve_bytes'] // 1024} KiB assumed "
            f"for the program (TFLM interpreter, kernels, application); fits in {flash}",
            f"- input: q = round(pixel / {q_in['scale']:.8g}) {_signed(q_in['zero_point'])}, pixel in [0, 1]; "
            f"output: p = {q_out['scale']:.8g} * (q {_signed(-q_out['zero_point'])})",
            f"- ops: {', '.join(a['ops'])}",
        ]
        if agree is not None:
            lines.append(f"- top-1 as model.int8.tflite (LiteRT) on {agree}/{a['images']} images")
    return lines


def _runtime_lines(report: dict) -> list[str]:
    """The int8 models' top-1 agreement with Keras on each runtime the gate ran them on."""
    lines = []
    for name, a in report["artifacts"].items():
        for label, r in a.get("runtimes", {}).items():
            if not lines:
                lines = ["", "int8 top-1 as Keras, per runtime (every one gated):"]
            lines.append(
                f"- {name} on {label}: {r['top1_agreement']}/{a['images']} ({r['top1_agreement_fraction']:.2%}), "
                f"max dp vs the first {r['max_abs_diff_vs_first']:.1e}"
            )
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
        if "min_top1_agreement" in tol:
            tol_text += f", top-1 >= {tol['min_top1_agreement']:.1%}"
        agree = f"{a['top1_agreement']}/{a['images']}"
        if a.get("top1_near_tie_flips"):
            agree += f" ({a['top1_near_tie_flips']} near-tie)"
        batch = a.get("dynamic_batch", {})
        batch_text = "error" if batch.get("error") else _num(batch.get("max_abs_diff"), ".0e")
        if a.get("format") == MCU:
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
    lines += _runtime_lines(report)
    lines += _micro_lines(report)
    lines.append("")
    if report["passed"]:
        lines.append("Result: PASS: every artifact matches Keras within its tolerance.")
    else:
        lines.append("Result: FAIL")
        lines += [f"- {reason}" for reason in report["failures"]]
    return "\n".join(lines)
