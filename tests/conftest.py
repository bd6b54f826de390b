"""Shared fixtures: the real Fashion-MNIST from $FASHIONNET_DATA (or ../shared beside the checkout)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def real_data_dir() -> Path:
    """Absolute, so tests that start processes in other folders find it too (the README passes a relative path)."""
    if os.environ.get("FASHIONNET_DATA"):
        return Path(os.path.abspath(os.environ["FASHIONNET_DATA"]))
    return REPO.parent / "shared" / "data" / "fashion-mnist"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    folder = real_data_dir()
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"real Fashion-MNIST not found at {folder}: set FASHIONNET_DATA")  # never a silent skip
    return folder


@pytest.fixture(scope="session")
def dataset(data_dir):
    from fashionnet.data import load_data

    return load_data(data_dir)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, data_dir, dataset):
    """One tiny training shared by the evaluation and CLI tests: 2 epochs on 3,000 images."""
    from fashionnet.config import TrainConfig
    from fashionnet.train import train

    run = tmp_path_factory.mktemp("runs") / "small"
    result = train(TrainConfig(epochs=2, limit=3000, batch_size=100), run, data=dataset, verbose=0)
    return result


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, dataset) -> Path:
    """The export/edge/predict tests' model: the assignment's network, 1 epoch on 2,000 images (batch 100)."""
    from export_fixtures import train_tiny_run

    return train_tiny_run(tmp_path_factory, dataset)


@pytest.fixture(scope="session")
def tiny_probs(tiny_run, dataset):
    """Keras's probabilities of the tiny model on the 10,000 test images, in the current backend."""
    import keras

    from fashionnet.data import preprocess_images

    model = keras.saving.load_model(tiny_run / "model.keras", compile=False)
    return model.predict(preprocess_images(dataset[1][0]), batch_size=500, verbose=0)


@pytest.fixture(scope="session")
def exported(tiny_run, data_dir):
    """The full export stage, once: onnx + tflite, fp32 + int8, verified on all 10,000 test images."""
    from fashionnet.export import export_run

    return tiny_run / "export", export_run(tiny_run, ("onnx", "tflite"), "int8", data_dir)


def run_cli(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m fashionnet ARGS` in a child process, as a user would call it."""
    full_env = {**os.environ, "FASHIONNET_DATA": str(real_data_dir()), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fashionnet", *args], capture_output=True, text=True, env=full_env, timeout=timeout
    )
