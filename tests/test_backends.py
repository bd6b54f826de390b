"""One codebase, three backends: reproducible on each, and the same weights predict the same on all."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, TRAINED_RUN_ARGS, real_data_dir, run_cli

BACKENDS = ("tensorflow", "jax", "torch")
# Measured max |Δp| vs tensorflow for the same .keras weights (the full 35-epoch model, 2,000 test images):
# jax 1.7e-06, torch 7.7e-07 (float32 conv and matmul summed in different orders). 1e-5 leaves a margin; a real
# divergence (wrong layout, wrong padding) moves probabilities by 1e-2 or more.
CROSS_BACKEND_TOLERANCE = 1e-5

PREDICT = """
import sys, numpy as np, keras
from fashionnet.core.data import load_data, preprocess_images
from fashionnet.core.networks import load
_, (x, _) = load_data(sys.argv[1])
model = load(sys.argv[2])
np.save(sys.argv[3], np.asarray(model.predict(preprocess_images(x[:2000]), batch_size=500, verbose=0)))
print(keras.backend.backend())
"""


@pytest.mark.slow
@pytest.mark.per_backend  # determinism on each backend
def test_same_seed_gives_identical_history_in_two_processes(trained_run, tmp_path):
    """Measured on all three backends: two processes, same seed and data -> bit-identical metrics, every epoch.
    The first process is the session's `reproduce`; the second trains the same options into another folder."""
    run = tmp_path / "again"
    proc = run_cli("train", "--out", run, *TRAINED_RUN_ARGS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    histories = [json.loads(path.read_text()) for path in (trained_run.history, run / "history.json")]
    first, second = ({k: v for k, v in h.items() if k != "epoch_seconds"} for h in histories)
    assert len(first["loss"]) == 2 and first == second


@pytest.mark.multibackend
def test_same_weights_same_probabilities_on_every_backend(trained_run, tmp_path):
    outputs = {}
    for backend in BACKENDS:
        out = tmp_path / f"{backend}.npy"
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        proc = subprocess.run(
            [sys.executable, "-c", PREDICT, str(real_data_dir()), str(trained_run.model), str(out)],
            capture_output=True, text=True, env=env, cwd=REPO, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip().splitlines()[-1] == backend
        outputs[backend] = np.load(out)
    reference = outputs["tensorflow"]
    assert reference.shape == (2000, 10)
    for backend in ("jax", "torch"):
        diff = np.abs(outputs[backend] - reference).max()
        assert diff <= CROSS_BACKEND_TOLERANCE, f"{backend} vs tensorflow: max |Δp| {diff:.2e}"
        assert (outputs[backend].argmax(1) == reference.argmax(1)).mean() >= 0.999
