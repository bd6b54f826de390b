"""RUN/export/ is a kit of its own: its README names what to copy and how to install, requirements.txt pins the
runtimes the parity gate verified with, and the files the README names are enough for the self-test, keras-free."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib.metadata import version

import pytest
from export_fixtures import blocked_edge_command

from fashionnet.publish.device_kit import KIT_NAME, KIT_README_NAME, REQUIREMENTS_NAME, kit_readme
from fashionnet_edge import MANIFEST_NAME, SELFTEST_NAME

pytestmark = pytest.mark.export


def named_files(readme: str) -> set[str]:
    """The file names the README tells a user to copy (in backticks)."""
    return set(re.findall(r"`([\w.]+\.(?:py|txt|json|onnx|tflite))`", readme.split("## Install")[0]))


def test_the_readme_and_requirements_describe_this_export(exported):
    folder, report = exported
    readme = (folder / KIT_README_NAME).read_text()
    assert set(report["artifacts"]) | {KIT_NAME, REQUIREMENTS_NAME, MANIFEST_NAME, SELFTEST_NAME} == named_files(readme)
    assert f"pip install -r {REQUIREMENTS_NAME}" in readme and "model.int8.onnx --selftest" in readme
    pins = dict(line.split("==") for line in (folder / REQUIREMENTS_NAME).read_text().split())
    runtimes = ("numpy", "pillow", "onnxruntime", "ai-edge-litert")  # the export holds .onnx and .tflite models
    assert pins == {name: version(name) for name in runtimes}
    files = json.loads((folder / MANIFEST_NAME).read_text())["files"]
    assert {KIT_README_NAME, REQUIREMENTS_NAME} <= set(files)  # hashed like everything else


def test_the_files_the_readme_names_are_enough_for_the_selftest(exported, tmp_path):
    folder, _ = exported
    device = tmp_path / "device"
    device.mkdir()
    for name in named_files((folder / KIT_README_NAME).read_text()):
        shutil.copy2(folder / name, device / name)
    for model in ("model.int8.onnx", "model.int8.tflite"):
        done = subprocess.run(
            blocked_edge_command(device, str(device / model), "--selftest"), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0 and f"selftest {model}: PASS" in done.stdout, done.stderr


def test_an_onnx_only_export_asks_for_onnxruntime_only(tmp_path):
    from fashionnet.publish.device_kit import requirements

    assert [line.split("==")[0] for line in requirements(["model.onnx", "model.int8.onnx"])] == [
        "numpy",
        "pillow",
        "onnxruntime",
    ]
    (tmp_path / "model.onnx").write_bytes(b"x" * 1000)
    readme = kit_readme(tmp_path, ["model.onnx"], "r1")
    assert "# fashionnet edge kit: run `r1`" in readme and "model.onnx --selftest" in readme
