"""The browser kit (export/web/): written into RUN/export/web/ by the export stage, with the page's kit.json.

kit.json is the page's only input besides the models: the class names, the ONNX models beside the kit (their
files, sizes and verified test accuracy) and a few Fashion-MNIST test images with their labels.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np

KIT_FORMAT = "fashionnet-web-kit/1"
SAMPLES_PER_CLASS = 3
WEB_DIR_NAME = "web"
# onnxruntime-web, where `npm ci` in the kit puts it: the page imports it from there (no CDN).
RUNTIME_DIR = Path("node_modules/onnxruntime-web/dist")


def kit_source_dir() -> Path:
    from fashionnet_web import KIT_DIR

    return KIT_DIR


def kit_files() -> tuple[str, ...]:
    from fashionnet_web import KIT_FILES

    return KIT_FILES


def sample_indices(labels: np.ndarray, per_class: int = SAMPLES_PER_CLASS) -> np.ndarray:
    """The first ``per_class`` test images of each class, in test-set order."""
    labels = np.asarray(labels)
    picks = [np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)


def kit_manifest(report: dict, images: np.ndarray, labels: np.ndarray) -> dict:
    """kit.json: ``report`` is the export's parity report, ``images`` (N, 28, 28) uint8 test images."""
    from fashionnet_edge import CLASS_NAMES, NOT_SURE_BELOW

    models = []
    for name, entry in report["artifacts"].items():
        if entry.get("format") != "onnx":
            continue
        models.append(
            {
                "key": entry["precision"],
                "file": f"../{name}",
                "bytes": entry["size_bytes"],
                "test_accuracy": entry.get("accuracy"),
                "test_images": entry.get("images"),
            }
        )
    models.sort(key=lambda m: m["key"] != "fp32")  # fp32 first: the page's default
    pick = sample_indices(labels)
    pixels = np.ascontiguousarray(np.asarray(images, dtype=np.uint8)[pick]).reshape(len(pick), 28 * 28)
    return {
        "format": KIT_FORMAT,
        "class_names": list(CLASS_NAMES),
        "not_sure_below": NOT_SURE_BELOW,  # the page says "not sure" below this top probability, as the kit does
        "models": models,
        "samples": {
            "source": "Fashion-MNIST test set (t10k), the first images of each class",
            "indices": pick.tolist(),
            "labels": np.asarray(labels)[pick].astype(int).tolist(),
            "pixels": base64.b64encode(pixels.tobytes()).decode("ascii"),
        },
    }


def write_web_kit(export_dir: Path, report: dict, images: np.ndarray, labels: np.ndarray) -> Path:
    """Copy the kit into ``export_dir``/web and write its kit.json; returns the kit folder."""
    kit_dir = Path(export_dir) / WEB_DIR_NAME
    kit_dir.mkdir(parents=True, exist_ok=True)
    source = kit_source_dir()
    for name in kit_files():
        shutil.copy2(source / name, kit_dir / name)
    manifest = kit_manifest(report, images, labels)
    (kit_dir / "kit.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return kit_dir
