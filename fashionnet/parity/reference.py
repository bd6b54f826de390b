"""The parity gate's reference: Keras's own probabilities for the test images, in the backend that trained the run.

A run trained on jax or torch is exported by a tensorflow process (the converters trace TensorFlow graphs); its
artifacts are still checked against the training backend's Keras, computed here in a child process started with
that backend. When that backend is not installed, the caller's backend stands in and the report says so.

    python -m fashionnet.parity.reference MODEL IMAGES.npy OUT.npy     (run with KERAS_BACKEND set)
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np

from fashionnet.core.child import child_main, module_command, raise_from_child, run_child

BATCH = 500
CHILD = "fashionnet.parity.reference"  # the child's name in its error lines


def current_backend() -> str:
    import keras

    return keras.backend.backend()


def _in_this_process(model_path: Path, images: np.ndarray) -> np.ndarray:
    from fashionnet.core.networks import load

    model = load(model_path, compile=False)
    return np.asarray(model.predict(images, batch_size=BATCH, verbose=0), dtype=np.float32)


def keras_probabilities(model_path: Path, images: np.ndarray, backend: str | None = None) -> tuple[np.ndarray, str]:
    """(probabilities (N, 10) float32, the backend that computed them): ``backend`` when installed, else this one."""
    here = current_backend()
    if backend in (None, here) or importlib.util.find_spec(backend) is None:
        return _in_this_process(Path(model_path), images), here
    with tempfile.TemporaryDirectory(prefix="fashionnet-reference-") as scratch:
        given, out = Path(scratch) / "images.npy", Path(scratch) / "probabilities.npy"
        np.save(given, images)
        command = module_command("fashionnet.parity.reference", model_path, given, out)
        done = run_child(command, env={"KERAS_BACKEND": backend})
        raise_from_child(CHILD, done, f"{model_path}: Keras reference on {backend} failed")
        return np.load(out), backend


def main(argv: list[str] | None = None) -> int:
    model, images, out = (argv if argv is not None else sys.argv[1:])[:3]
    return child_main(CHILD, lambda: np.save(out, _in_this_process(Path(model), np.load(images))))


if __name__ == "__main__":
    sys.exit(main())
