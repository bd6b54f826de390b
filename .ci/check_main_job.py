"""After the README's main job: the run folder holds every stage's output and the export passed its gate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

STAGE_FILES = (
    "config.json", "model.keras", "history.json", "metrics.json", "confusion_matrix.csv", "accuracy.png",
    "loss.png", "confusion_matrix.png", "report.md", "export/parity.json", "export/fashionnet_edge.py",
    "export/model.onnx", "export/model.tflite", "export/model.int8.onnx", "export/model.int8.tflite",
    "export/web/index.html", "export/web/app.js", "export/web/kit.json", "export/web/package-lock.json",
)  # fmt: skip


def main(run: Path) -> int:
    missing = [name for name in STAGE_FILES if not (run / name).is_file()]
    if missing:
        print(f"check_main_job: {run} lacks {', '.join(missing)}", file=sys.stderr)
        return 1
    parity = json.loads((run / "export" / "parity.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    if not parity["passed"]:
        print(f"check_main_job: {run}/export/parity.json did not pass: {parity['failures']}", file=sys.stderr)
        return 1
    print(f"main job ok: {run}: test accuracy {metrics['test_accuracy']:.4f}, {len(parity['artifacts'])} artifacts")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
