"""report.md: every result of a run folder in one readable page, images included."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fashionnet.data import CLASS_NAMES
from fashionnet.runs import RunPaths, read_json, write_text

ASSIGNMENT_ACCURACY = 0.9257


def _md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _read_confusion(path: Path) -> np.ndarray:
    rows = path.read_text(encoding="utf-8").strip().splitlines()[1:]
    return np.array([[int(v) for v in row.split(",")[1:]] for row in rows])


def build_report(run_dir: Path) -> str:
    paths = RunPaths(Path(run_dir))
    saved = read_json(paths.config)
    config, env = saved.get("config", {}), saved.get("environment", {})
    history = read_json(paths.history)
    metrics = read_json(paths.metrics)
    out = [f"# fashionnet run `{paths.root.name}`", ""]
    out += ["## Setup", "", _md_table(["setting", "value"], [[k, v] for k, v in config.items()])]
    out += ["", "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items() if k != "data_sha256"), ""]

    last = {k: v[-1] for k, v in history.items()}
    out += ["## Training", "", f"{len(history.get('loss', []))} epochs. Last epoch:", ""]
    out += [_md_table(list(last), [[f"{v:.4f}" for v in last.values()]]), ""]
    out += ["![accuracy](accuracy.png)", "", "![loss](loss.png)", ""]

    acc = metrics["test_accuracy"]
    out += ["## Test set", "", f"- test accuracy: **{acc:.4f}** (the assignment reports {ASSIGNMENT_ACCURACY})"]
    out += [f"- test loss: {metrics['test_loss']:.4f}"]
    if saved.get("recipe", {}).get("test_time_flip"):
        out += ["- predictions averaged over each image and its mirror image (flip averaging, saved in model.keras);"]
        out += ["  the training curves above are the plain network's"]
    out += [""]
    confusion = _read_confusion(paths.confusion_csv)
    header = ["label \\ predict"] + [str(i) for i in range(len(CLASS_NAMES))]
    rows = [[f"{i} {CLASS_NAMES[i]}", *row] for i, row in enumerate(confusion.tolist())]
    out += ["### Confusion matrix", "", _md_table(header, rows), "", "![confusion matrix](confusion_matrix.png)", ""]
    out += ["### Classification report", "", "```", paths.classification_report.read_text().rstrip(), "```", ""]

    parity_path = paths.export_dir / "parity.json"
    if parity_path.exists():
        out += ["## Export", ""]
        parity_md = paths.export_dir / "parity.md"
        if parity_md.exists():
            out += [parity_md.read_text().rstrip(), ""]
        else:
            out += ["```json", json.dumps(read_json(parity_path), indent=2), "```", ""]
    return "\n".join(out)


def write_report(run_dir: Path) -> Path:
    paths = RunPaths(Path(run_dir))
    return write_text(paths.report, build_report(run_dir))
