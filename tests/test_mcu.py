"""The microcontroller target: a full-integer model verified on the TensorFlow Lite Micro interpreter, its memory
needs measured, and a C array that is the model byte for byte."""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fashionnet.convert.formats import artifact_names
from fashionnet.errors import ExportError, MissingDependencyError
from fashionnet.publish.mcu import arena_constant, resolver_method

MCU_IMAGES = 1000  # TFLite Micro's reference kernels take ~12 ms an image on the build machines
REPO = Path(__file__).resolve().parents[1]
THIRD_PARTY_ENV = "FASHIONNET_THIRD_PARTY"  # the folder holding tflite-micro/ and flatbuffers/
BUILD_JOBS = 2
SELFTEST_LINE = re.compile(
    r"selftest model\.mcu\.tflite: PASS, top-1 as Keras on (\d+)/\1 images, max \|\u0394p\| \d\.\de[-+]\d\d "
    r"not gated \(int8\), TensorFlow Lite Micro \(reference kernels, [^)]+\), .+"
)

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
        "CMakeLists.txt", "README.md", "fashionnet_classify.cc", "fashionnet_classify.h", "fashionnet_classify_raw.cc",
        "fashionnet_selftest.cc", "model_data.cc", "model_data.h", "model_ops.cmake", "selftest_data.cc",
        "selftest_data.h", "shim",
    ]  # fmt: skip
    assert (kit / "model_ops.cmake").read_text().endswith(f"set(FASHIONNET_OPS {' '.join(entry['ops'])})\n")
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
    assert {"model.mcu.tflite", "mcu/model_data.cc", "mcu/model_data.h", "mcu/selftest_data.cc"} <= set(
        manifest["files"]
    )


def test_the_wheel_ships_every_kit_file():
    """Every file write_mcu_kit copies exists and matches pyproject's package-data for fashionnet_mcu."""
    import tomllib

    from fashionnet_mcu import KIT_DIR, KIT_FILES

    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for name in KIT_FILES:
        assert (KIT_DIR / name).is_file(), name
        assert any(
            fnmatch.fnmatch(name, pattern) and name.count("/") == pattern.count("/")
            for pattern in patterns["fashionnet_mcu"]
        ), name


def test_selftest_data_is_valid_cpp_arrays(tmp_path):
    from fashionnet.publish.mcu import selftest_header, selftest_source

    images = np.arange(2 * 784, dtype=np.uint8).reshape(2, 784)
    keras = np.eye(10, dtype=np.float32)[[3, 7]]
    keras[1, 2] = 1e-12  # a tiny float and exact ones must both be valid literals
    reference = {
        "indices": [4, 9],
        "images": base64.b64encode(images.tobytes()).decode(),
        "keras_probabilities": keras.tolist(),
    }
    text = selftest_source(reference)
    assert "1.000000000e+00f," in text and "9.999999960e-13f," in text  # float32 values, exactly
    (tmp_path / "selftest_data.cc").write_text(text)
    (tmp_path / "selftest_data.h").write_text(selftest_header(2))
    (tmp_path / "model_data.h").write_text(
        "namespace fashionnet { constexpr int kPixels = 784; constexpr int kClasses = 10; }\n"
    )
    (tmp_path / "check.cc").write_text(
        '#include "selftest_data.h"\nstatic_assert(sizeof(fashionnet::kSelftestPixels) == 2 * 784, "");\n'
    )
    compiler = shutil.which("g++") or shutil.which("c++")
    assert compiler, "a C++ compiler is needed (Debian: apt-get install g++)"
    for source in ("selftest_data.cc", "check.cc"):
        done = subprocess.run(
            [compiler, "-std=c++17", "-fsyntax-only", "-Wall", "-Werror", f"-I{tmp_path}", str(tmp_path / source)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr


# ----------------------------------------------------------------------------------------------------------------
# The kit built with cmake and g++ against the TensorFlow Lite Micro sources (marker mcu_build: minutes)
# ----------------------------------------------------------------------------------------------------------------


def third_party_dir() -> Path:
    folder = Path(os.environ.get(THIRD_PARTY_ENV) or REPO.parent / "shared" / "third_party")
    if not (folder / "tflite-micro" / "tensorflow" / "lite" / "micro").is_dir():
        pytest.fail(f"no TensorFlow Lite Micro sources at {folder}/tflite-micro: set {THIRD_PARTY_ENV}")
    return folder


@pytest.fixture(scope="module")
def mcu_binaries(mcu_export, tmp_path_factory):
    """RUN/export/mcu/ configured and built in a scratch folder: {program name: path}."""
    import tensorflow

    for tool in ("cmake", "g++"):
        assert shutil.which(tool), (
            f"{tool} is needed to build the kit (Debian: apt-get update; apt-get install -y cmake g++)"
        )
    folder, _ = mcu_export
    third_party = third_party_dir()
    build = tmp_path_factory.mktemp("mcu-build")
    configure = [
        "cmake",
        "-S",
        str(folder / "mcu"),
        "-B",
        str(build),
        f"-DTFLM_DIR={third_party / 'tflite-micro'}",
        f"-DFLATBUFFERS_DIR={third_party / 'flatbuffers'}",
        f"-DGEMMLOWP_DIR={Path(tensorflow.__file__).parent / 'include' / 'external' / 'gemmlowp'}",
    ]
    for command in (configure, ["cmake", "--build", str(build), f"-j{BUILD_JOBS}"]):
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return {name: build / name for name in ("fashionnet_selftest", "fashionnet_classify_raw")}


@pytest.mark.export
@pytest.mark.slow
@pytest.mark.mcu_build
def test_the_built_kit_passes_its_selftest_as_the_python_kit(mcu_export, mcu_binaries):
    from fashionnet_edge import selftest

    folder, _ = mcu_export
    done = subprocess.run([str(mcu_binaries["fashionnet_selftest"])], capture_output=True, text=True)
    line = done.stdout.strip()
    assert done.returncode == 0 and SELFTEST_LINE.fullmatch(line), line
    passed, python_line = selftest(folder / "model.mcu.tflite")  # the same images on LiteRT
    assert passed and python_line.split(", max")[0] == line.split(", max")[0]


@pytest.mark.export
@pytest.mark.slow
@pytest.mark.mcu_build
def test_the_built_kit_classifies_a_raw_image_as_the_interpreter(mcu_export, mcu_binaries, tmp_path):
    from fashionnet.parity.runtimes import open_runner
    from fashionnet_edge import CLASS_NAMES

    folder, _ = mcu_export
    reference = json.loads((folder / "selftest.json").read_text())
    image = np.frombuffer(base64.b64decode(reference["images"]), dtype=np.uint8)[: 28 * 28]
    raw = tmp_path / "image.raw"
    raw.write_bytes(image.tobytes())
    done = subprocess.run([str(mcu_binaries["fashionnet_classify_raw"]), str(raw)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    probs = open_runner(folder / "model.mcu.tflite")(image.reshape(1, 28, 28, 1).astype(np.float32) / 255)[0]
    best = int(probs.argmax())
    assert done.stdout == f"{raw}: {CLASS_NAMES[best]} {probs[best]:.3f}\n"
    raw.write_bytes(image.tobytes()[:-1])
    done = subprocess.run([str(mcu_binaries["fashionnet_classify_raw"]), str(raw)], capture_output=True, text=True)
    assert done.returncode == 2 and "expected 784 bytes (28 x 28 grey levels), found 783" in done.stderr
