"""Test-set metrics the assignment reports: loss and accuracy, the label/predict crosstab, per-class report."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

from fashionnet import data as fdata
from fashionnet.errors import ModelError
from fashionnet.model import load as load_keras_model
from fashionnet.runs import RunPaths, read_json, write_json, write_text


@dataclass
class Evaluation:
    test_loss: float
    test_accuracy: float
    confusion: np.ndarray  # rows: true label, columns: predicted label
    report_text: str
    report: dict
    predictions: np.ndarray

    def metrics(self) -> dict:
        return {
            "test_loss": self.test_loss,
            "test_accuracy": self.test_accuracy,
            "test_images": int(self.confusion.sum()),
            "per_class_recall": {
                name: self.report[name]["recall"] for name in fdata.CLASS_NAMES if name in self.report
            },
        }


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a .keras file, with one clear error for missing, truncated or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} not found")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelError(f"{path} is not a Keras model archive (.keras zip file); it may be truncated")
    try:
        model = load_keras_model(path, compile=True)
    except Exception as exc:  # noqa: BLE001 - keras raises many types for damaged archives
        raise ModelError(f"{path} could not be loaded as a Keras model: {exc}") from exc
    expected_in, expected_out = (None, *fdata.IMAGE_SHAPE), (None, fdata.NUM_CLASSES)
    found_in = tuple(getattr(model, "input_shape", ()) or ())
    found_out = tuple(getattr(model, "output_shape", ()) or ())
    if found_in != expected_in or found_out != expected_out:
        raise ModelError(
            f"{path} is not a fashionnet model: expected input {expected_in} and output {expected_out}, "
            f"found {found_in} and {found_out}"
        )
    return model


def evaluate_model(model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int = 1000) -> Evaluation:
    """Evaluate on preprocessed images and integer labels."""
    x, y = fdata.preprocess(images, labels)
    if not getattr(model, "compiled", False):
        model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    scores = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    probabilities = model.predict(x, batch_size=batch_size, verbose=0)
    predictions = np.argmax(probabilities, axis=1)
    label_ids = list(range(fdata.NUM_CLASSES))
    report_kwargs = dict(labels=label_ids, target_names=list(fdata.CLASS_NAMES), digits=4, zero_division=0)
    return Evaluation(
        test_loss=float(scores["loss"]),
        test_accuracy=float(scores["accuracy"]),
        confusion=confusion_matrix(labels, predictions, labels=label_ids),
        report_text=classification_report(labels, predictions, **report_kwargs),
        report=classification_report(labels, predictions, output_dict=True, **report_kwargs),
        predictions=predictions,
    )


def crosstab_text(confusion: np.ndarray) -> str:
    """The assignment's pd.crosstab(label, predict) layout, without pandas."""
    width = max(5, len(str(confusion.max())) + 1)
    ids = range(len(confusion))
    lines = ["predict".ljust(8) + "".join(str(i).rjust(width) for i in ids), "label"]
    for i, row in enumerate(confusion):
        lines.append(str(i).ljust(8) + "".join(str(v).rjust(width) for v in row) + f"   {fdata.CLASS_NAMES[i]}")
    return "\n".join(lines)


def confusion_csv(confusion: np.ndarray) -> str:
    header = ["label \\ predict"] + [f"{i} {name}" for i, name in enumerate(fdata.CLASS_NAMES)]
    rows = [",".join(header)]
    for i, row in enumerate(confusion):
        rows.append(",".join([f"{i} {fdata.CLASS_NAMES[i]}"] + [str(int(v)) for v in row]))
    return "\n".join(rows) + "\n"


def read_confusion_csv(path: Path) -> np.ndarray:
    """The matrix written by confusion_csv(), without its header row and label column."""
    rows = Path(path).read_text(encoding="utf-8").strip().splitlines()[1:]
    return np.array([[int(v) for v in row.split(",")[1:]] for row in rows])


def evaluate_run(run_dir: str | os.PathLike, data_dir=None, dataset=None) -> Evaluation:
    """Evaluate RUN/model.keras on the official test set and write metrics.json, the CSV and the report."""
    paths = RunPaths(Path(run_dir))
    model = load_model(paths.model)
    _, (x_test, y_test) = dataset if dataset is not None else fdata.load_data(data_dir)
    result = evaluate_model(model, x_test, y_test)
    metrics = result.metrics()
    if paths.config.exists():
        metrics["backend"] = read_json(paths.config).get("environment", {}).get("backend")
    metrics["evaluated_with_backend"] = keras.backend.backend()
    write_json(paths.metrics, metrics)
    write_text(paths.confusion_csv, confusion_csv(result.confusion))
    write_text(paths.classification_report, result.report_text)
    return result
