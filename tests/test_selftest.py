"""The device self-test: `fashionnet_edge.py MODEL --selftest` reruns the export's parity check on selftest.json
with the device's own onnxruntime and prints one line; exit 0 on pass, 1 on fail, 2 when it cannot run."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import numpy as np
import pytest
from export_fixtures import blocked_edge_command

from fashionnet.publish.selftest import (
    CANDIDATES,
    MIN_MARGIN,
    SELFTEST_IMAGES,
    selftest_candidates,
    selftest_reference,
)
from fashionnet_edge import SELFTEST_FORMAT, SELFTEST_NAME

pytestmark = pytest.mark.export


def edge(folder, *args):
    return subprocess.run(blocked_edge_command(folder, *args), capture_output=True, text=True, timeout=120)


def _margins(probs: np.ndarray) -> np.ndarray:
    top = np.sort(probs, axis=1)
    return top[:, -1] - top[:, -2]


def test_the_export_writes_unsaturated_test_images_with_kerass_answers(exported, dataset, keras_probs):
    folder, report = exported
    reference = json.loads((folder / SELFTEST_NAME).read_text())
    assert reference["format"] == SELFTEST_FORMAT
    indices = reference["indices"]
    assert len(indices) == SELFTEST_IMAGES and indices == sorted(indices)
    (_, _), (test_images, test_labels) = dataset
    images = np.frombuffer(base64.b64decode(reference["images"]), dtype=np.uint8).reshape(-1, 28, 28)
    np.testing.assert_array_equal(images, test_images[indices])
    assert reference["labels"] == test_labels[indices].tolist()
    keras = np.asarray(reference["keras_probabilities"])
    np.testing.assert_allclose(keras, keras_probs[indices], atol=1e-5)  # Keras's answers, as the gate computed them
    assert set(indices) <= set(selftest_candidates(keras_probs).tolist())
    assert (_margins(keras_probs) >= MIN_MARGIN).sum() >= CANDIDATES  # even the session's 2-epoch model has them
    assert reference["min_keras_margin"] >= MIN_MARGIN - 1e-6 and (_margins(keras) >= MIN_MARGIN - 1e-6).all()
    assert reference["max_keras_probability"] < 1 - 1e-3  # not saturated
    assert reference["min_keras_probability"] == pytest.approx(keras.max(axis=1).min(), abs=1e-6)
    assert reference["max_keras_probability"] == pytest.approx(keras.max(axis=1).max(), abs=1e-6)
    assert set(reference["artifacts"]) == set(report["artifacts"])
    assert reference["artifacts"]["model.onnx"]["max_abs_diff_tolerance"] == 1e-5
    assert reference["artifacts"]["model.int8.onnx"]["max_abs_diff_tolerance"] is None


def runtime_name(model: str) -> str:
    from importlib import metadata

    return (
        f"onnxruntime {metadata.version('onnxruntime')}"
        if model.endswith(".onnx")
        else (f"LiteRT {metadata.version('ai-edge-litert')}")
    )


@pytest.mark.parametrize("model", ["model.onnx", "model.int8.onnx", "model.tflite", "model.int8.tflite"])
def test_selftest_passes_on_this_machine_with_one_line(exported, model):
    folder, report = exported
    done = edge(folder, str(folder / model), "--selftest")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert line.startswith(f"selftest {model}: PASS, top-1 as Keras on {SELFTEST_IMAGES}/{SELFTEST_IMAGES} images, ")
    assert f", {runtime_name(model)}, " in line
    tolerance = report["artifacts"][model]["tolerance"]["max_abs_diff"] if "int8" not in model else None
    assert (f"<= {tolerance:.0e}" in line) if tolerance else ("not gated (int8)" in line)


def _broken_kernels(model_path, copy_path, factor: float) -> None:
    """The fp32 ONNX model with its second convolution's weights scaled by ``factor``: what a runtime with a broken
    kernel would compute (the int8 model does not serve: it is not gated on probabilities)."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model_path))
    conv2 = [node for node in proto.graph.node if node.op_type == "Conv"][1]
    for tensor in proto.graph.initializer:
        if tensor.name == conv2.input[1]:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) * factor, tensor.name))
    onnx.save(proto, str(copy_path))


@pytest.mark.parametrize("factor", [0.5, 1.01], ids=["halved", "1-percent"])
def test_selftest_fails_when_the_device_computes_something_else(exported, tmp_path, factor):
    """An fp32 file whose arithmetic is off, grossly or by 1 % in one layer's weights (what a runtime with broken
    kernels would compute): exit 1."""
    folder, _ = exported
    copy = tmp_path / "export"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("web"))
    _broken_kernels(folder / "model.onnx", copy / "model.onnx", factor)
    refused = edge(copy, str(copy / "model.onnx"), "--selftest")
    assert refused.returncode == 2 and "does not match manifest.json" in refused.stderr  # the manifest sees it first
    done = edge(copy, str(copy / "model.onnx"), "--selftest", "--no-verify")
    assert done.returncode == 1
    (line,) = done.stdout.splitlines()
    assert line.startswith("selftest model.onnx: FAIL, ") and "> 1e-05" in line


def test_tflite_selftest_fails_on_another_network_and_names_a_damaged_file(exported, tmp_path):
    import keras

    from fashionnet.convert.tflite import FP32, tflite_converter, write_saved_model
    from fashionnet.core.networks import build_model

    folder, _ = exported
    copy = tmp_path / "export"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("web"))
    keras.utils.set_random_seed(1)
    write_saved_model(build_model(), str(tmp_path / "untrained"), batch=None)  # the same interface, other weights
    (copy / "model.tflite").write_bytes(tflite_converter(str(tmp_path / "untrained"), FP32).convert())
    assert "does not match manifest.json" in edge(copy, str(copy / "model.tflite"), "--selftest").stderr
    done = edge(copy, str(copy / "model.tflite"), "--selftest", "--no-verify")
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("selftest model.tflite: FAIL, ") and "> 1e-04" in done.stdout
    (copy / "model.tflite").write_bytes((copy / "model.onnx").read_bytes()[:1000])
    damaged = edge(copy, str(copy / "model.tflite"), "--selftest", "--no-verify")
    assert damaged.returncode == 2 and "model.tflite: not a loadable TFLite model" in damaged.stderr
    assert "Traceback" not in damaged.stderr


def test_selftest_without_its_reference_or_with_inputs_is_a_usage_error(exported, tmp_path):
    folder, _ = exported
    for name in ("model.onnx", "fashionnet_edge.py"):
        shutil.copy2(folder / name, tmp_path / name)
    done = edge(tmp_path, str(tmp_path / "model.onnx"), "--selftest")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        f"fashionnet_edge: error: {tmp_path / SELFTEST_NAME}: no self-test reference beside the model "
        "(`fashionnet export` writes it)"
    )
    both = edge(folder, str(folder / "model.onnx"), "x.png", "--selftest")
    assert both.returncode == 2 and "give INPUTS to classify, or --selftest without inputs" in both.stderr


def test_a_weak_model_still_gets_its_clearest_images(exported, dataset, keras_probs):
    """A model sure of nothing (no top-1 MIN_MARGIN ahead anywhere) still gets a full reference set: the images
    with the largest margins."""
    folder, report = exported
    weak = 0.4 * keras_probs + 0.06  # same ranking, no probability above 0.46, no margin above 0.4
    (_, _), (test_images, test_labels) = dataset
    reference = selftest_reference({"model.onnx": folder / "model.onnx"}, report, weak, test_images, test_labels)
    assert len(reference["indices"]) == SELFTEST_IMAGES and reference["min_keras_probability"] < 0.5
    assert _margins(weak[reference["indices"]]).min() >= np.sort(_margins(weak))[-CANDIDATES] - 1e-9


def test_saturated_images_are_left_out_so_small_errors_show(dataset, keras_probs):
    """A confident model (the session's probabilities sharpened: its most confident images within 1e-6 of 1) gets
    the least saturated of its robust images, not the most confident ones, where a 5 % error hides."""
    logits = np.log(np.clip(keras_probs, 1e-30, 1)) * 6
    sharp = np.exp(logits - logits.max(axis=1, keepdims=True))
    sharp /= sharp.sum(axis=1, keepdims=True)
    robust = np.flatnonzero(_margins(sharp) >= MIN_MARGIN)
    most_sure = np.argsort(-sharp.max(axis=1), kind="stable")[:CANDIDATES]
    assert len(robust) >= CANDIDATES and (sharp[most_sure].max(axis=1) > 1 - 1e-6).all()  # where errors hide
    chosen = selftest_candidates(sharp)
    assert len(chosen) == CANDIDATES and (np.diff(chosen) > 0).all()  # distinct, in test order
    assert (_margins(sharp[chosen]) >= MIN_MARGIN).all()
    others = np.setdiff1d(robust, chosen)
    assert sharp[chosen].max(axis=1).max() <= sharp[others].max(axis=1).min()  # the least saturated of them
    assert sharp[chosen].max(axis=1).max() < 1 - 1e-3
