"""A short real training run: it learns, the history is complete, the evaluation is self-consistent."""

from __future__ import annotations

import csv
import os
import platform

import numpy as np
import pytest

from fashionnet.config import TrainConfig
from fashionnet.errors import ModelError, RunError
from fashionnet.evaluation.evaluate import crosstab_text, evaluate_run
from fashionnet.runs import read_json
from fashionnet.training.trainer import train
from tests.conftest import TRAINED_RUN

pytestmark = pytest.mark.per_backend  # the trainer and evaluation on each backend

# 2 epochs on 3,000 images (batch 100) measured 0.765 (tensorflow), 0.763 (jax), 0.760 (torch) test accuracy;
# chance is 0.10.
ACCURACY_FLOOR = 0.72


def test_short_training_beats_the_floor(trained_run, run_copy, dataset):
    result = evaluate_run(run_copy, data=dataset)
    assert result.test_accuracy > ACCURACY_FLOOR
    metrics = read_json(trained_run.metrics)  # what `reproduce` wrote is what a fresh evaluation finds
    assert metrics["test_accuracy"] == pytest.approx(result.test_accuracy)
    assert metrics["test_images"] == 10000


def test_history_has_every_epoch_and_the_split_is_the_assignments(trained_run):
    history = read_json(trained_run.history)
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"}
    assert all(len(values) == 2 for values in history.values())
    assert history["loss"][1] < history["loss"][0]
    config = read_json(trained_run.config)
    assert config["config"]["validation_split"] == 0.2 and config["config"]["limit"] == 3000
    env = config["environment"]
    assert env["backend"] in ("tensorflow", "jax", "torch") and env["keras"] and env["numpy"]
    assert env["data_sha256_of_decompressed_idx"]["train-images-idx3-ubyte"].startswith("c59f468a")
    # the CLI chose the fastest kernels unless the environment (the user) had chosen: either way it is recorded
    if platform.machine() == "x86_64":
        onednn = env["kernel_settings"]["TF_ENABLE_ONEDNN_OPTS"]
        ours = "TF_ENABLE_ONEDNN_OPTS" in os.environ.get("FASHIONNET_KERNEL_DEFAULTS", "")
        set_by = "user" if "TF_ENABLE_ONEDNN_OPTS" in os.environ and not ours else "fashionnet"
        assert onednn == {"value": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"), "set_by": set_by}
    assert not trained_run.backup.exists() and not trained_run.history_partial.exists()


def test_confusion_matrix_is_consistent_with_accuracy(trained_run, run_copy, dataset):
    result = evaluate_run(run_copy, data=dataset)
    confusion = result.confusion
    assert confusion.shape == (10, 10) and confusion.sum() == 10000
    assert confusion.sum(axis=1).tolist() == [1000] * 10  # rows are the true labels
    assert np.trace(confusion) / confusion.sum() == pytest.approx(result.test_accuracy, abs=1e-4)
    _, (_, y_test) = dataset
    assert (result.predictions == y_test).mean() == pytest.approx(result.test_accuracy, abs=1e-4)
    for name in ("T-shirt/top", "Ankle boot", "macro avg"):
        assert name in result.report_text
    rows = list(csv.reader(trained_run.confusion_csv.open()))
    assert rows[0][0] == "label \\ predict" and rows[0][1] == "0 T-shirt/top" and rows[10][0] == "9 Ankle boot"
    assert np.array([[int(v) for v in r[1:]] for r in rows[1:]]).tolist() == confusion.tolist()
    assert crosstab_text(confusion).splitlines()[0].startswith("predict")


def test_finished_run_is_not_retrained_by_accident(trained_run, dataset):
    before = trained_run.model.stat().st_mtime_ns
    with pytest.raises(RunError, match="already trained.*--force"):
        train(TrainConfig(**TRAINED_RUN), trained_run.root, data=dataset, verbose=0)
    assert trained_run.model.stat().st_mtime_ns == before


def test_resuming_with_other_options_is_refused(tmp_path, dataset):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"config": {"epochs": 35, "limit": 3000}}')
    (run / "history.partial.json").write_text('{"loss": [1.0]}')
    with pytest.raises(RunError, match=r"other options \(.*epochs: 35 -> 2"):
        train(TrainConfig(epochs=2, limit=3000), run, data=dataset, verbose=0)


def test_model_loading_errors(tmp_path, trained_run):
    """core.networks.load: every failure is a ModelError naming the file; a model is loaded only if it fits."""
    import re
    import zipfile

    import keras

    from fashionnet.core.data import IMAGE_SHAPE, NUM_CLASSES
    from fashionnet.core.networks import load

    missing = tmp_path / "missing.keras"
    with pytest.raises(ModelError, match=re.escape(f"model file {missing} not found")):
        load(missing)
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(trained_run.model.read_bytes()[:5000])
    with pytest.raises(ModelError, match="truncated"):
        load(truncated)
    foreign_zip = tmp_path / "notes.keras"
    with zipfile.ZipFile(foreign_zip, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    with pytest.raises(ModelError, match=re.escape(f"{foreign_zip} could not be loaded as a Keras model")):
        load(foreign_zip)
    other = tmp_path / "other.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(other)
    with pytest.raises(ModelError, match="not a fashionnet model") as info:
        load(other)
    message = str(info.value)
    assert str(other) in message
    assert f"expected input {(None, *IMAGE_SHAPE)} and output {(None, NUM_CLASSES)}" in message
    assert f"found {(None, 4)} and {(None, 2)}" in message
    assert load(trained_run.model).output_shape == (None, NUM_CLASSES)


def test_progress_lines_give_each_epoch_its_time_and_the_time_left():
    from fashionnet.training.callbacks import ProgressLog

    lines = []
    progress = ProgressLog(epochs=3, log=lines.append, heartbeat_seconds=0)
    progress.set_params({"steps": 2, "epochs": 3})
    progress.on_train_begin()
    for epoch in range(2):
        progress.on_epoch_begin(epoch)
        progress.on_train_batch_begin(0)
        progress.on_epoch_end(epoch, {"loss": 0.5, "accuracy": 0.75})
    assert lines[0] == "training: 3 epochs, 2 steps each"
    assert lines[1].startswith("  epoch 1/3: step 0/2, ")  # the heartbeat inside a long epoch
    assert lines[2].startswith("epoch 1/3  loss 0.5000  accuracy 0.7500  (") and "s left)" in lines[2]
    assert lines[4].startswith("epoch 2/3 ") and lines[4].endswith(" left)")
