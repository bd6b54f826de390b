"""RUN/export/MODEL_CARD.md: what the exported model is for, how it was made and how well each artifact does.

Written by the export stage from what it measured: the run record, Keras's probabilities on the test images the
parity gate used (per-class precision and recall, confusions, with scikit-learn) and the parity report.
"""

from __future__ import annotations

import datetime

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fashionnet_edge import CLASS_NAMES

MODEL_CARD_NAME = "MODEL_CARD.md"
CONFUSIONS_SHOWN = 5


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def _micro_budget(report: dict) -> str:
    micro = next((e for e in report["artifacts"].values() if e.get("format") == "mcu" and "arena_bytes" in e), None)
    if micro is None:
        return (
            "No microcontroller model in this export (`--formats ...,mcu --quantize int8` makes one for "
            "TensorFlow Lite Micro)."
        )
    ram = ", ".join(budget for budget, ok in micro["fits"]["ram"].items() if ok) or "none of 256 KB / 512 KB / 1 MB"
    flash = ", ".join(budget for budget, ok in micro["fits"]["flash"].items() if ok) or "none of 1 MB / 2 MB"
    return (
        f"Microcontroller budget ({micro['file']}, TensorFlow Lite Micro): {micro['arena_bytes']:,} bytes of tensor "
        f"arena (RAM; fits {ram}) and {micro['flash_bytes']:,} bytes of model (flash, with "
        f"{micro['flash_program_reserve_bytes'] // 1024} KiB assumed for the program; fits "
        f"{flash}), measured with the interpreter's reference kernels on the build machine."
    )


def _class_quality(reference: np.ndarray, labels: np.ndarray) -> tuple[list[str], list[str]]:
    """(the per-class table's rows and the confusions' lines, the classes of the most common confusions)."""
    labels = np.asarray(labels).astype(int)
    predicted = np.asarray(reference).argmax(axis=1)
    classes = list(range(len(CLASS_NAMES)))
    precision, recall, _, support = precision_recall_fscore_support(labels, predicted, labels=classes, zero_division=0)
    confusion = confusion_matrix(labels, predicted, labels=classes)
    off_diagonal = [(int(confusion[t, p]), t, p) for t in classes for p in classes if t != p and confusion[t, p]]
    off_diagonal.sort(key=lambda c: (-c[0], c[1], c[2]))
    shown = off_diagonal[:CONFUSIONS_SHOWN]
    confused = list(dict.fromkeys(CLASS_NAMES[c] for _, t, p in shown for c in (t, p)))
    lines = ["| class | precision | recall | images |", "|---|---:|---:|---:|"]
    lines += [f"| {CLASS_NAMES[c]} | {precision[c]:.3f} | {recall[c]:.3f} | {int(support[c]):,} |" for c in classes]
    lines += ["", "Most common confusions (true class -> predicted class: images):", ""]
    lines += [f"- {CLASS_NAMES[t]} -> {CLASS_NAMES[p]}: {count}" for count, t, p in shown]
    return lines, confused


def _purpose() -> list[str]:
    return [
        "## What it is for",
        "",
        "- Input: one 28 x 28 grey image of a single fashion product, light garment on a black background, pixel "
        "values in [0, 1] (the Fashion-MNIST format: Zalando catalogue photos, centred, greyscale). Output: "
        "probabilities over 10 classes: " + ", ".join(CLASS_NAMES) + ".",
        "- Suited to: classifying Fashion-MNIST-like product images; teaching and benchmarking; a small model for "
        "edge devices (the ONNX/TFLite/browser kits beside this card).",
        "- Not suited to: real-world photos as they come (other backgrounds, lighting, several objects, people "
        "wearing the garment): the kits' photo preprocessing (grey, invert a light background, crop, resize, "
        "centre) narrows the gap but does not close it, and no accuracy on such photos was measured. Not for "
        "any decision about people.",
    ]


def _provenance(record) -> list[str]:
    config = record.config.to_dict() if record is not None else {}
    environment = record.environment if record is not None else {}
    return [
        "## How it was made",
        "",
        f"- Recipe `{config.get('recipe', '?')}`: {config.get('epochs', '?')} epoch"
        f"{'' if config.get('epochs') == 1 else 's'}, "
        f"batch {config.get('batch_size', '?')}, validation split {config.get('validation_split', '?')}, "
        f"seed {config.get('seed', '?')}"
        + (f", first {config['limit']:,} training images only" if config.get("limit") else "")
        + f"; trained with Keras {environment.get('keras', '?')} on {environment.get('backend', '?')}.",
        "- Data: Fashion-MNIST, the official IDX files (60,000 training images, 10,000 test images), checked "
        "against their SHA-256 (in `manifest.json`, under the run record).",
    ]


def _artifact_rows(report: dict) -> list[str]:
    lines = [
        "| artifact | size | accuracy | drop vs Keras (points) | top-1 as Keras | ms/image, batch 1, 1 thread |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, entry in report["artifacts"].items():
        if "accuracy" not in entry:
            continue
        latency = entry.get("latency_ms_batch1")
        lines.append(
            f"| {name} | {_mb(entry['size_bytes'])} | {entry['accuracy']:.2%} | {entry['accuracy_drop_points']:+.2f} | "
            f"{entry['top1_agreement']:,}/{entry['images']:,} | {'-' if latency is None else f'{latency:.3f}'} |"
        )
    return lines


def _limits(confused: list[str]) -> list[str]:
    return [
        "## Known limits",
        "",
        f"- The classes it confuses most are {', '.join(confused)} (above): similar shapes at 28 x 28.",
        "- int8 models trade a little accuracy (the gate allows 0.5 points) for size and speed, and their answers "
        "depend somewhat on the CPU's integer kernels (fashionnet's docs/web.md compares two onnxruntime builds).",
        "- The training images are catalogue photos of one retailer; other sources, styles and regions were not "
        "evaluated.",
    ]


def model_card(report: dict, reference: np.ndarray, labels: np.ndarray, record=None, now=None) -> str:
    """The card's Markdown. ``reference``: Keras's (N, 10) probabilities on the N test images the gate used."""
    now = now or datetime.datetime.now(datetime.UTC)
    n = len(labels)
    quality, confused = _class_quality(reference, labels)
    lines = [
        "# Model card: fashionnet Fashion-MNIST classifier",
        "",
        f"Exported {now.date().isoformat()} by fashionnet {report.get('fashionnet_version', '?')} from run "
        f"`{report.get('run', '?')}`. Every figure below was measured by that export on {n:,} Fashion-MNIST test "
        "images; `parity.json` and `manifest.json` beside this card hold the details and the files' SHA-256.",
        "",
        *_purpose(),
        "",
        *_provenance(record),
        "",
        "## How well it does",
        "",
        f"Keras accuracy on these {n:,} test images: **{report['keras_accuracy']:.2%}**.",
        "",
        *quality,
        "",
        "## The artifacts",
        "",
        *_artifact_rows(report),
        "",
        "Latencies are the export machine's (median of 50 single-image runs while it may have been shared); the "
        "device self-test (`fashionnet_edge.py MODEL --selftest`) checks the answers on the device itself.",
        "",
        _micro_budget(report),
        "",
        *_limits(confused),
    ]
    return "\n".join(lines) + "\n"
