"""Classify inputs with any fashionnet model: a .keras (current backend), .onnx or .tflite file, or a run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fashionnet.errors import InputError, ModelError
from fashionnet.parity.runtimes import RUNTIME_SUFFIXES, open_runner, run_batched
from fashionnet_edge import EdgeInputError, load_inputs_named

__all__ = ["predict", "resolve_model", "MODEL_SUFFIXES"]

MODEL_SUFFIXES = (".keras", *RUNTIME_SUFFIXES)
BATCH = 256


def _load_inputs(inputs) -> tuple[np.ndarray, list[str]]:
    try:
        return load_inputs_named([Path(p) for p in inputs])
    except EdgeInputError as exc:
        raise InputError(str(exc)) from exc


def _keras_predictor(path: Path):
    from fashionnet.core.networks import load

    model = load(path)
    return lambda x: np.asarray(model.predict(x, batch_size=BATCH, verbose=0), dtype=np.float32)


def _artifact_predictor(path: Path, verify: bool):
    runner = open_runner(path, verify=verify)
    return lambda x: run_batched(runner, x, BATCH)


def resolve_model(model_path: Path) -> Path:
    """The model file to load: the path itself, or RUN/model.keras (the run's reference model) for a run folder.

    Newcomers pass the run folder they trained into; a folder without model.keras, or a missing path, is a
    ModelError naming it and what was expected.
    """
    path = Path(model_path)
    if path.is_dir():
        model = path / "model.keras"
        if not model.is_file():
            raise ModelError(
                f"{path}: no model.keras in this folder: expected a run folder with a trained model.keras, "
                "or a .keras, .onnx or .tflite file"
            )
        return model
    if not path.is_file():
        raise ModelError(f"{path}: model file not found: expected a .keras, .onnx or .tflite file, or a run folder")
    return path


def predict(model_path: Path, inputs: list[Path], verify: bool = True) -> tuple[np.ndarray, list[str]]:
    """Class probabilities (N, 10) float32 and one name per image ("file" or "file[i]" for IDX/.npy rows).

    model_path is a .keras, .onnx or .tflite file, or a run folder (its model.keras, see resolve_model). Inputs
    are IDX (.gz or raw), .npy or PNG/JPEG files, loaded as the edge kit loads them. A missing, truncated or
    foreign model file raises ModelError naming it, as does an artifact that differs from the export's
    manifest.json beside it unless ``verify`` is False; a bad input raises InputError.
    """
    path = resolve_model(model_path)
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ModelError(f"{path}: unsupported model type {suffix or '(none)'}: expected .keras, .onnx or .tflite")
    run = _keras_predictor(path) if suffix == ".keras" else _artifact_predictor(path, verify)
    images, names = _load_inputs(inputs)
    return run(images), names
