"""fashionnet.parity.runtimes: one runner per artifact format, picked from the file, each checked against Keras."""

from __future__ import annotations

import numpy as np
import pytest

import fashionnet_edge
from fashionnet.core.data import IMAGE_SHAPE, NUM_CLASSES
from fashionnet.errors import ModelError
from fashionnet.parity.gate import ONNX_FP32_TOLERANCE, TFLITE_FP32_TOLERANCE
from fashionnet.parity.runtimes import TfliteClassifier, artifact_format, check_contract, open_runner, run_batched

ARTIFACTS = ["model.onnx", "model.tflite", "model.int8.onnx", "model.int8.tflite"]
IMAGES = 2000  # real test images per runner: enough for top-1 agreement to mean something, quick on 2 cores


# --- no export needed ---------------------------------------------------------------------------------------------


def test_run_batched_runs_every_image_once_in_order():
    calls = []

    def runner(x):
        calls.append(len(x))
        return np.repeat(x[:, :1, 0, 0], NUM_CLASSES, axis=1).astype(np.float64)

    images = np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones((1, *IMAGE_SHAPE), np.float32)
    out = run_batched(runner, images, 4)
    assert calls == [4, 4, 2]
    assert out.dtype == np.float32 and out.shape == (10, NUM_CLASSES)
    np.testing.assert_array_equal(out[:, 0], np.arange(10))


@pytest.mark.parametrize(
    "input_shape, output_shape",
    [
        ((None, *IMAGE_SHAPE), (None, NUM_CLASSES)),  # Keras
        (["batch", *IMAGE_SHAPE], ["batch", NUM_CLASSES]),  # onnxruntime
        (np.array([-1, *IMAGE_SHAPE], np.int32), np.array([-1, NUM_CLASSES], np.int32)),  # LiteRT signature
    ],
)
def test_contract_accepts_every_runtimes_spelling_of_the_shapes(input_shape, output_shape):
    check_contract("model", input_shape, output_shape)


@pytest.mark.parametrize(
    "input_shape, output_shape",
    [
        ((None, *IMAGE_SHAPE[:-1], 3), (None, NUM_CLASSES)),
        ((None, *IMAGE_SHAPE), (None, NUM_CLASSES + 1)),
        (np.array([-1, 4], np.int32), np.array([-1, 2], np.int32)),
        ((None, *IMAGE_SHAPE), [(None, NUM_CLASSES), (None, NUM_CLASSES)]),  # two outputs
        (None, None),
    ],
)
def test_contract_names_the_file_what_it_expects_and_what_it_found(tmp_path, input_shape, output_shape):
    path = tmp_path / "other.keras"
    with pytest.raises(ModelError, match="not a fashionnet model") as info:
        check_contract(path, input_shape, output_shape)
    message = str(info.value)
    assert message.startswith(str(path))
    assert f"expected input {(None, *IMAGE_SHAPE)} and output {(None, NUM_CLASSES)}, found " in message


def test_unknown_artifact_type_is_a_model_error(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"x")
    for call in (artifact_format, open_runner):
        with pytest.raises(ModelError, match=r"model\.pt: not an \.onnx or \.tflite artifact"):
            call(path)


@pytest.mark.export
@pytest.mark.parametrize("suffix", [".onnx", ".tflite"])
def test_missing_or_garbage_artifact_is_a_model_error_naming_it(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    with pytest.raises(ModelError, match="not found") as info:
        open_runner(path)
    assert str(path) in str(info.value)
    path.write_bytes(b"this is not a model" * 10)
    with pytest.raises(ModelError, match="not a loadable") as info:
        open_runner(path)
    assert str(path) in str(info.value)


@pytest.mark.export
def test_onnx_model_of_another_shape_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), path)
    with pytest.raises(ModelError, match="not a fashionnet model") as info:
        open_runner(path)
    assert str(path) in str(info.value)


@pytest.mark.slow
@pytest.mark.export
def test_tflite_model_of_another_shape_is_refused(tmp_path):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, *IMAGE_SHAPE[:-1], 3], tf.float32)])
    def colour_means(x):
        return tf.reduce_mean(x, axis=[1, 2])

    converter = tf.lite.TFLiteConverter.from_concrete_functions([colour_means.get_concrete_function()], colour_means)
    path = tmp_path / "other.tflite"
    path.write_bytes(converter.convert())
    with pytest.raises(ModelError, match="not a fashionnet model") as info:
        open_runner(path)
    message = str(info.value)
    assert message.startswith(str(path)) and f"found {(None, *IMAGE_SHAPE[:-1], 3)} and {(None, 3)}" in message


# --- the exported tiny model ----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.export
def test_the_onnx_runner_is_the_edge_kits_classifier(exported):
    folder, _ = exported
    for name in ("model.onnx", "model.int8.onnx"):
        assert type(open_runner(folder / name)) is fashionnet_edge.OnnxClassifier  # what is verified is what ships
    for name in ("model.tflite", "model.int8.tflite"):
        assert type(open_runner(folder / name)) is TfliteClassifier  # the kit's, as for ONNX


@pytest.mark.slow
@pytest.mark.export
@pytest.mark.parametrize("name", ARTIFACTS)
def test_each_runner_matches_keras_on_real_test_images(exported, dataset, keras_probs, name):
    from fashionnet.core.data import preprocess_images

    folder, _ = exported
    images, keras_probs = preprocess_images(dataset[1][0][:IMAGES]), keras_probs[:IMAGES]
    runner = open_runner(folder / name)
    probs = run_batched(runner, images, 500)
    assert probs.shape == keras_probs.shape and probs.dtype == np.float32
    agreement = (probs.argmax(1) == keras_probs.argmax(1)).mean()
    if ".int8." in name:
        assert agreement >= 0.95, agreement
    else:
        tolerance = ONNX_FP32_TOLERANCE if name.endswith(".onnx") else TFLITE_FP32_TOLERANCE
        assert np.abs(probs - keras_probs).max() <= tolerance
        top2 = np.sort(keras_probs, axis=1)[:, -2:]
        flipped = probs.argmax(1) != keras_probs.argmax(1)
        assert (top2[flipped, 1] - top2[flipped, 0] <= 2 * tolerance).all()  # only near ties may flip, as in the gate
    one_thread = open_runner(folder / name, threads=1)
    np.testing.assert_allclose(one_thread(images[:64]), probs[:64], atol=1e-6)
    with pytest.raises(fashionnet_edge.EdgeInputError, match="float32"):  # one input contract for every runner
        runner(images[:8].astype(np.float64))
