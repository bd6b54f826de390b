"""The microcontroller target: a full-integer model verified on the TensorFlow Lite Micro interpreter, its memory
needs measured, and a C array that is the model byte for byte."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from fashionnet.convert.formats import artifact_names
from fashionnet.errors import ExportError, MissingDependencyError
from fashionnet.publish.mcu import arena_constant, resolver_method

MCU_IMAGES = 1000  # TFLite Micro's reference kernels take ~12 ms an image on the build machines

DUMP = r"""
#include <cstdio>
#include "model_data.h"
int main() {
  const unsigned long misalignment = reinterpret_cast<size_t>(fashionnet::kModel) % 16;
  std::fwrite(fashionnet::kModel, 1, fashionnet::kModelSize, stdout);
  std::fprintf(stderr, "%zu %d %.9g %d %.9g %d %lu\n", fashionnet::kTensorArenaSize, fashionnet::kOpCount,
               fashionnet::kInputScale, fashionnet::kInputZeroPoint, fashionnet::kOutputScale,
               fashionnet::kOutputZeroPoint, misalignment);
}
"""


def test_names_and_options():
    assert resolver_method("CONV_2D") == "AddConv2D"
    assert resolver_method("MAX_POOL_2D") == "AddMaxPool2D"
    assert resolver_method("FULLY_CONNECTED") == "AddFullyConnected"
    assert resolver_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert arena_constant(36_704) == 36_864 and arena_constant(1024) == 1024
    assert artifact_names(("onnx", "mcu"), "int8") == ["model.onnx", "model.int8.onnx", "model.mcu.tflite"]
    with pytest.raises(ExportError, match="the mcu format is a full-integer int8 model: add --quantize int8"):
        artifact_names(("mcu",), None)


def test_mcu_without_its_extra_names_the_extra(tmp_path, monkeypatch):
    import sys

    from fashionnet.publish.stage import export_run

    monkeypatch.setitem(sys.modules, "tflite_micro", None)  # what an install without [mcu] sees: ImportError
    (tmp_path / "model.keras").write_bytes(b"x")
    with pytest.raises(MissingDependencyError, match=r"fashionnet\[mcu\]"):
        export_run(tmp_path, ("onnx", "mcu"), "int8")


@pytest.fixture(scope="module")
def mcu_export(trained_run, data_dir, tmp_path_factory):
    """A copy of the tiny run exported with the microcontroller model, verified on the first MCU_IMAGES images."""
    from fashionnet.publish.stage import export_run

    run = tmp_path_factory.mktemp("mcu") / "run"
    run.mkdir()
    for name in ("model.keras", "config.json"):
        shutil.copy2(trained_run.root / name, run / name)
    report = export_run(run, ("tflite", "mcu"), "int8", data_dir, limit=MCU_IMAGES)
    return run / "export", report


@pytest.mark.export
@pytest.mark.slow
def test_the_mcu_model_passes_the_gate_with_its_memory_measured(mcu_export):
    from tflite_micro.python.tflite_micro import runtime

    folder, report = mcu_export
    entry = report["artifacts"]["model.mcu.tflite"]
    assert entry["passed"] and entry["format"] == "mcu" and entry["accuracy_drop_points"] <= 0.5
    assert entry["images"] == MCU_IMAGES and entry["flash_bytes"] == (folder / "model.mcu.tflite").stat().st_size
    assert entry["ops"] == ["CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "RESHAPE", "SOFTMAX"]
    assert entry["top1_agreement_with_int8_tflite"] >= 0.98 * MCU_IMAGES
    data = (folder / "model.mcu.tflite").read_bytes()

    def runs(arena: int) -> bool:
        try:
            interpreter = runtime.Interpreter.from_bytes(data, arena_size=arena)
            interpreter.set_input(np.zeros((1, 28, 28, 1), dtype=np.int8), 0)
            interpreter.invoke()
            return True
        except Exception:  # noqa: BLE001
            return False

    arena = entry["arena_bytes"]
    assert runs(arena) and not runs(arena - 64)  # the least it needs, as reported
    assert entry["fits"]["ram"]["256 KB"] == (arena < 256 * 1024)
    # flash: the model and the program must both fit (a 0.98 MB model does not fit a 1 MB part)
    needed = entry["flash_bytes"] + entry["flash_program_reserve_bytes"]
    assert entry["flash_program_reserve_bytes"] >= 128 * 1024
    assert entry["fits"]["flash"] == {"1 MB": needed <= 1024 * 1024, "2 MB": needed <= 2 * 1024 * 1024}
    text = (folder / "parity.md").read_text()
    assert f"tensor arena {arena:,} bytes" in text and "Microcontroller model model.mcu.tflite" in text
    assert f"{arena:,} bytes of tensor arena" in (folder / "MODEL_CARD.md").read_text()


@pytest.mark.export
@pytest.mark.slow
def test_the_c_array_is_the_model_byte_for_byte(mcu_export, tmp_path):
    folder, report = mcu_export
    entry = report["artifacts"]["model.mcu.tflite"]
    kit = folder / "mcu"
    assert sorted(p.name for p in kit.iterdir()) == [
        "README.md", "fashionnet_classify.cc", "model_data.cc", "model_data.h"
    ]  # fmt: skip
    (tmp_path / "dump.cc").write_text(DUMP)
    compiler = shutil.which("g++") or shutil.which("c++")
    assert compiler, "a C++ compiler is needed to check the generated array (Debian: apt-get install g++)"
    binary = tmp_path / "dump"
    subprocess.run(
        [
            compiler,
            "-std=c++17",
            "-O0",
            f"-I{kit}",
            str(kit / "model_data.cc"),
            str(tmp_path / "dump.cc"),
            "-o",
            str(binary),
        ],
        check=True,
        capture_output=True,
    )
    done = subprocess.run([str(binary)], capture_output=True, check=True)
    assert done.stdout == (folder / "model.mcu.tflite").read_bytes()
    arena, ops, in_scale, in_zero, out_scale, out_zero, misalignment = done.stderr.decode().split()
    q = entry["quantization"]
    assert int(arena) == arena_constant(entry["arena_bytes"]) and int(ops) == len(entry["ops"])
    assert float(in_scale) == pytest.approx(q["input"]["scale"], rel=1e-6) and int(in_zero) == q["input"]["zero_point"]
    assert (
        float(out_scale) == pytest.approx(q["output"]["scale"], rel=1e-6) and int(out_zero) == q["output"]["zero_point"]
    )
    assert misalignment == "0"
    header = (kit / "model_data.h").read_text()
    assert re.search(r"AddConv2D\(\);.*AddSoftmax\(\);", header)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"model.mcu.tflite", "mcu/model_data.cc", "mcu/model_data.h"} <= set(manifest["files"])
