"""Test-set metrics the assignment reports: loss and accuracy, the label/predict crosstab, per-class report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

from fashionnet.core import data as fdata
from fashionnet.core.networks import load as load_keras_model
from fashionnet.runs import RunPaths, read_record_if_any, write_json, write_text


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


def evaluate_run(run_dir: str | os.PathLike, data: fdata.DataSource = None) -> Evaluation:
    """Evaluate RUN/model.keras on the official test set and write metrics.json, the CSV and the report.

    ``data``: the arrays already loaded, a folder, or None (see data.dataset_from)."""
    paths = RunPaths(Path(run_dir))
    model = load_keras_model(paths.model, compile=True)  # compiled as saved: test_loss is the run's own loss
    _, (x_test, y_test) = fdata.dataset_from(data)
    result = evaluate_model(model, x_test, y_test)
    metrics = result.metrics()
    if (record := read_record_if_any(paths)) is not None:
        metrics["backend"] = record.backend
    metrics["evaluated_with_backend"] = keras.backend.backend()
    write_json(paths.metrics, metrics)
    write_text(paths.confusion_csv, confusion_csv(result.confusion))
    write_text(paths.classification_report, result.report_text)
    return result
