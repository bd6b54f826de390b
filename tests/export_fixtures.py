"""Fixtures of the export, edge and predict tests: one tiny trained run, exported once per session."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EDGE_KIT = REPO / "export" / "fashionnet_edge.py"
TRAIN_IMAGES = 2000

# Each test module imports these fixtures, which makes one fixture per module; this memo makes the session-scoped
# ones compute once per session all the same (the training and the export are the expensive parts).
_MEMO: dict[str, object] = {}


def _once(key: str, make):
    if key not in _MEMO:
        _MEMO[key] = make()
    return _MEMO[key]


# Run python with keras, tensorflow, jax, torch (and fashionnet) unimportable, then the edge kit's main().
BLOCKED_RUNNER = r"""
import importlib.abc, sys
sys.dont_write_bytecode = True  # the kit runs from the shared RUN/export folder: leave no __pycache__ there
BLOCKED = {"keras", "tensorflow", "jax", "jaxlib", "torch", "tf_keras", "fashionnet"}
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this edge-device simulation")
        return None
sys.meta_path.insert(0, Blocker())
kit = sys.argv.pop(1)
sys.path.insert(0, kit)
import fashionnet_edge
assert fashionnet_edge.__file__.startswith(kit), fashionnet_edge.__file__
assert not any(m.split(".")[0] in BLOCKED for m in sys.modules), sorted(sys.modules)
sys.exit(fashionnet_edge.main(sys.argv[1:]))
"""


def export_data_dir() -> Path:
    if os.environ.get("FASHIONNET_DATA"):
        return Path(os.environ["FASHIONNET_DATA"])
    return Path(__file__).resolve().parents[2] / "shared/data/fashion-mnist"


@pytest.fixture(scope="session")
def fmnist_dir() -> Path:
    folder = export_data_dir()
    if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"real Fashion-MNIST not found at {folder}: set FASHIONNET_DATA")
    return folder


@pytest.fixture(scope="session")
def fmnist(fmnist_dir):
    from fashionnet.data import load_data

    return _once("fmnist", lambda: load_data(fmnist_dir))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, fmnist) -> Path:
    """RUN/model.keras + config.json: the assignment's model, 1 epoch on 2,000 real training images."""
    return _once("tiny_run", lambda: _train_tiny_run(tmp_path_factory, fmnist))


def _train_tiny_run(tmp_path_factory, fmnist) -> Path:
    import keras

    from fashionnet.data import preprocess
    from fashionnet.model import build_model

    keras.utils.set_random_seed(0)
    (train_images, train_labels), _ = fmnist
    x, y = preprocess(train_images[:TRAIN_IMAGES], train_labels[:TRAIN_IMAGES])
    model = build_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=100, verbose=0)
    run = tmp_path_factory.mktemp("export-runs") / "tiny"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"backend": keras.backend.backend(), "epochs": 1}))
    return run


@pytest.fixture(scope="session")
def tiny_probs(tiny_run, fmnist) -> np.ndarray:
    """Keras's probabilities of the tiny model on the 10,000 test images, in the current backend."""
    import keras

    from fashionnet.data import preprocess_images

    def make():
        model = keras.saving.load_model(tiny_run / "model.keras", compile=False)
        return model.predict(preprocess_images(fmnist[1][0]), batch_size=500, verbose=0)

    return _once("tiny_probs", make)


@pytest.fixture(scope="session")
def exported(tiny_run, fmnist_dir) -> tuple[Path, dict]:
    """The full export stage, once: onnx + tflite, fp32 + int8, verified on all 10,000 test images."""
    from fashionnet.export import export_run

    return _once(
        "exported", lambda: (tiny_run / "export", export_run(tiny_run, ("onnx", "tflite"), "int8", fmnist_dir))
    )


def write_idx(path: Path, images: np.ndarray) -> Path:
    """uint8 (N, 28, 28) -> an IDX file (magic 00 00 08 03, big-endian sizes)."""
    header = bytes([0, 0, 0x08, images.ndim]) + np.asarray(images.shape, dtype=">u4").tobytes()
    path.write_bytes(header + images.astype(np.uint8).tobytes())
    return path


def blocked_edge_command(kit_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", BLOCKED_RUNNER, str(kit_dir), *args]
