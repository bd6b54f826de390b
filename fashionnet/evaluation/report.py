"""report.md: every result of a run folder in one readable page, images included."""

from __future__ import annotations

import json
from pathlib import Path

from fashionnet.core.data import CLASS_NAMES
from fashionnet.core.machine import describe_kernel_settings
from fashionnet.evaluation.evaluate import read_confusion_csv
from fashionnet.runs import RunPaths, read_json, read_record, read_timings, write_text

ASSIGNMENT_ACCURACY = 0.9257
# What a config value of None means, per setting (a bare "None" in the table reads like a missing value).
NONE_MEANS = {"limit": "all training images"}


def _md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _setting(key: str, value) -> str:
    return NONE_MEANS.get(key, "not set") if value is None else str(value)


def _metric(key: str, value: float) -> str:
    """epoch_seconds is a duration, not a score: seconds to one decimal; the scores keep 4 decimals."""
    return f"{value:.1f} s" if key == "epoch_seconds" else f"{value:.4f}"


def build_report(run_dir: Path) -> str:
    paths = RunPaths(Path(run_dir))
    record = read_record(paths)
    config, env = record.config.to_dict(), record.environment
    history = read_json(paths.history)
    metrics = read_json(paths.metrics)
    out = [f"# fashionnet run `{paths.root.name}`", ""]
    out += ["## Setup", "", _md_table(["setting", "value"], [[k, _setting(k, v)] for k, v in config.items()])]
    # versions only: nested entries (the data checksums) do not fit a one-line summary; config.json keeps them
    out += ["", "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items() if not isinstance(v, dict)), ""]

    last = {k: v[-1] for k, v in history.items()}
    out += ["## Training", "", f"{len(history.get('loss', []))} epochs. Last epoch:", ""]
    out += [_md_table(list(last), [[_metric(k, v) for k, v in last.items()]]), ""]
    out += ["![accuracy](accuracy.png)", "", "![loss](loss.png)", ""]

    acc = metrics["test_accuracy"]
    out += ["## Test set", "", f"- test accuracy: **{acc:.4f}** (the assignment reports {ASSIGNMENT_ACCURACY})"]
    out += [f"- test loss: {metrics['test_loss']:.4f}"]
    if record.recipe.get("test_time_flip"):
        out += ["- predictions averaged over each image and its mirror image (flip averaging, saved in model.keras);"]
        out += ["  the training curves above are the plain network's"]
    out += [""]
    confusion = read_confusion_csv(paths.confusion_csv)
    header = ["label \\ predict"] + [str(i) for i in range(len(CLASS_NAMES))]
    rows = [[f"{i} {CLASS_NAMES[i]}", *row] for i, row in enumerate(confusion.tolist())]
    out += ["### Confusion matrix", "", _md_table(header, rows), "", "![confusion matrix](confusion_matrix.png)", ""]
    out += ["### Classification report", "", "```", paths.classification_report.read_text().rstrip(), "```", ""]

    out += _time_section(paths, env)

    if paths.parity.exists():
        out += ["## Export", ""]
        if paths.parity_md.exists():
            out += [paths.parity_md.read_text().rstrip(), ""]
        else:
            out += ["```json", json.dumps(read_json(paths.parity), indent=2), "```", ""]
    return "\n".join(out)


def _time_section(paths: RunPaths, env: dict) -> list[str]:
    """Each stage's wall time (timings.json, written as the stages finish), the CPU and the kernel settings."""
    timings = {stage: t for stage, t in read_timings(paths).items() if stage != "report"}
    if not timings:
        return []
    cpus = {t.get("cpu", "") for t in timings.values()}
    one_cpu = len(cpus) == 1  # a stage redone later may have run elsewhere: then each row names its CPU
    header = ["stage", "wall time"] + ([] if one_cpu else ["CPU"])
    rows = [[s, f"{t['seconds']:.1f} s"] + ([] if one_cpu else [t.get("cpu", "")]) for s, t in timings.items()]
    chosen = describe_kernel_settings(env.get("kernel_settings"))
    out = ["## Time", "", _md_table(header, rows), ""]
    trained_on = env.get("cpu", "a CPU not recorded")
    where = f"Stages run on {cpus.pop()}. " if one_cpu and trained_on not in cpus else ""
    return out + [f"{where}Trained on {trained_on}; kernel settings: {chosen}.", ""]


def write_report(run_dir: Path) -> Path:
    paths = RunPaths(Path(run_dir))
    return write_text(paths.report, build_report(run_dir))
