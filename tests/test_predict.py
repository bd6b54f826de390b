"""fashionnet.evaluation.predict: one entry point for .keras, .onnx and .tflite models."""

from __future__ import annotations

import numpy as np
import pytest
from export_fixtures import write_idx

from fashionnet.errors import InputError, ModelError
from fashionnet.evaluation.predict import predict, resolve_model


def test_missing_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="model file not found: expected a .keras, .onnx or .tflite file") as info:
        predict(tmp_path / "nope.onnx", [])
    assert "nope.onnx" in str(info.value)


def test_folder_without_model_keras_is_a_one_line_model_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")  # an unfinished run: no model.keras yet
    with pytest.raises(ModelError, match="no model.keras in this folder: expected a run folder") as info:
        predict(tmp_path, [])
    message = str(info.value)
    assert message.startswith(f"{tmp_path}: ") and "\n" not in message


def test_run_folder_resolves_to_its_model_keras(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"x")
    assert resolve_model(tmp_path) == tmp_path / "model.keras"
    assert resolve_model(tmp_path / "model.keras") == tmp_path / "model.keras"


def test_unknown_model_type_is_a_model_error(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"x")
    with pytest.raises(ModelError, match="unsupported model type .pt"):
        predict(path, [])


@pytest.mark.parametrize(
    "suffix",
    [".keras", pytest.param(".onnx", marks=pytest.mark.export), pytest.param(".tflite", marks=pytest.mark.export)],
)
def test_garbage_model_is_a_model_error(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"this is not a model" * 10)
    with pytest.raises(ModelError) as info:
        predict(path, [])
    assert str(path) in str(info.value)


@pytest.mark.slow
@pytest.mark.export
@pytest.mark.parametrize("name", ["model.keras", "model.onnx", "model.tflite", "model.int8.onnx", "model.int8.tflite"])
def test_every_model_type_predicts_like_keras(exported, trained_run, dataset, keras_probs, tmp_path, name):
    folder, _ = exported
    path = trained_run.root / name if name == "model.keras" else folder / name
    idx = write_idx(tmp_path / "few-idx3-ubyte", dataset[1][0][:50])
    np.save(tmp_path / "one.npy", dataset[1][0][50])
    probs, names = predict(path, [idx, tmp_path / "one.npy"])
    assert probs.shape == (51, 10) and probs.dtype == np.float32 and len(names) == 51
    assert names[0] == f"{idx}[0]" and names[-1] == f"{tmp_path / 'one.npy'}[0]"
    if ".int8." in name:
        assert (probs.argmax(1) == keras_probs[:51].argmax(1)).mean() >= 0.9
    else:
        np.testing.assert_allclose(probs, keras_probs[:51], atol=1e-4)


@pytest.mark.slow
def test_run_folder_predicts_with_its_model_keras(trained_run, dataset, keras_probs, tmp_path):
    np.save(tmp_path / "few.npy", dataset[1][0][:20])
    probs, names = predict(trained_run.root, [tmp_path / "few.npy"])
    assert names == [f"{tmp_path / 'few.npy'}[{i}]" for i in range(20)]
    np.testing.assert_allclose(probs, keras_probs[:20], atol=1e-5)


@pytest.mark.slow
@pytest.mark.export
def test_truncated_model_and_bad_input(exported, tmp_path):
    folder, _ = exported
    for name in ("model.onnx", "model.tflite"):
        truncated = tmp_path / name
        truncated.write_bytes((folder / name).read_bytes()[:5000])
        with pytest.raises(ModelError, match=name):
            predict(truncated, [])
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((2, 28, 28), np.nan, np.float32))
    with pytest.raises(InputError, match="bad.npy"):
        predict(folder / "model.onnx", [bad])
