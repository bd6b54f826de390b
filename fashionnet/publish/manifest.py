"""RUN/export/manifest.json: the SHA-256 of every file the export publishes, with what made them.

The edge kit owns reading it and the check a device makes before loading a model (``fashionnet_edge.read_manifest``,
``verify_file``); this module writes it, as the last file of the staged export folder.
"""

from __future__ import annotations

import datetime
import platform
from importlib import metadata
from pathlib import Path

from fashionnet_edge import MANIFEST_FORMAT, MANIFEST_NAME, sha256_file

# Distributions whose versions decide what the artifacts hold (either tensorflow distribution may be installed).
TOOLS = ("fashionnet", "keras", "tensorflow", "tensorflow-cpu", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert",
         "numpy", "jax", "torch")  # fmt: skip
GATE_FIELDS = ("passed", "accuracy", "accuracy_drop_points", "top1_agreement", "images", "max_abs_diff")
SKIPPED_PARTS = ("node_modules",)  # the web kit's npm install: not the export's output, pinned by its lock file


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def file_table(export_dir: Path) -> dict[str, dict]:
    """{relative POSIX path: {"sha256", "bytes"}} for every regular file under ``export_dir``."""
    export_dir = Path(export_dir)
    table = {}
    for path in sorted(export_dir.rglob("*")):
        relative = path.relative_to(export_dir)
        if path.is_symlink() or not path.is_file() or path.name == MANIFEST_NAME:
            continue
        if any(part in SKIPPED_PARTS for part in relative.parts):
            continue
        table[relative.as_posix()] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return table


def build_manifest(export_dir: Path, report: dict, record=None, now: datetime.datetime | None = None) -> dict:
    """The manifest of a staged export folder: files, the run's record, the tools, the parity gate's results."""
    now = now or datetime.datetime.now(datetime.UTC)
    return {
        "format": MANIFEST_FORMAT,
        "created": now.replace(microsecond=0).isoformat(),
        "run": {
            "name": report.get("run"),
            **({"record": record.to_json()} if record is not None else {}),
        },
        "tools": tool_versions(),
        "gate": {
            "passed": report["passed"],
            "images": report["images"],
            "keras_backend": report.get("keras_backend"),
            "keras_accuracy": report["keras_accuracy"],
            "artifacts": {
                name: {key: entry.get(key) for key in GATE_FIELDS} for name, entry in report["artifacts"].items()
            },
        },
        "files": file_table(export_dir),
    }
