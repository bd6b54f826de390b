"""The Python kit's own files in RUN/export/: README.md (what to copy to a device, how to install, the self-test)
and requirements.txt, which pins the runtimes at the versions the parity gate verified these models with."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from fashionnet.runs import write_text
from fashionnet_edge import MANIFEST_NAME, SELFTEST_NAME

KIT_README_NAME = "README.md"
REQUIREMENTS_NAME = "requirements.txt"
KIT_NAME = "fashionnet_edge.py"
RUNTIMES = {".onnx": "onnxruntime", ".tflite": "ai-edge-litert"}  # the distributions the kit runs each with


def requirements(models: list[str]) -> list[str]:
    """``name==version`` of numpy, Pillow (photos) and each exported format's runtime, as installed here."""
    wanted = ["numpy", "pillow"] + sorted({RUNTIMES[Path(name).suffix] for name in models})
    return [f"{name}=={importlib.metadata.version(name)}" for name in wanted]


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.2f} MB"


def kit_readme(folder: Path, models: list[str], run: str) -> str:
    """The README of this export folder, naming the files it holds."""
    first = next((m for m in models if m.endswith(".int8.onnx")), models[0])
    rows = [f"| `{name}` | {_size(folder / name)} |" for name in models]
    return "\n".join(
        [
            f"# fashionnet edge kit: run `{run}`",
            "",
            "This folder runs the exported model on a device with numpy and onnxruntime (or LiteRT for `.tflite`);",
            "nothing in it imports fashionnet, keras or tensorflow. `MODEL_CARD.md` says what the model is for,",
            "`parity.md` how each file compared with Keras on the 10,000 test images.",
            "",
            "## Copy to the device",
            "",
            f"- `{KIT_NAME}` (the kit) and `{REQUIREMENTS_NAME}`;",
            "- one model (or several):",
            "",
            "| model | size |",
            "|---|---:|",
            *rows,
            "",
            f"- `{MANIFEST_NAME}` (the kit refuses a model whose SHA-256 differs from it) and `{SELFTEST_NAME}` (the",
            "  reference answers of `--selftest`).",
            "",
            "## Install, check, classify",
            "",
            "```sh",
            f"python3 -m venv kit && kit/bin/pip install -r {REQUIREMENTS_NAME}",
            f"kit/bin/python {KIT_NAME} {first} --selftest",
            f"kit/bin/python {KIT_NAME} {first} shirt.jpg --top 3",
            "```",
            "",
            f"`{REQUIREMENTS_NAME}` pins the versions the export verified these models with; the self-test checks",
            "the answers again with the device's own runtime build and CPU. Other inputs (IDX, `.npy`), `--json`",
            f"and the exit codes: `kit/bin/python {KIT_NAME} --help`.",
            "",
        ]
    )


def write_device_kit(folder: Path, models: list[str], run: str) -> None:
    """README.md and requirements.txt into the staged export ``folder`` (``models``: the artifacts it holds for
    the Python kit)."""
    write_text(folder / REQUIREMENTS_NAME, "\n".join(requirements(models)) + "\n")
    write_text(folder / KIT_README_NAME, kit_readme(folder, models, run))
