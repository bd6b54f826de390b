"""PNG figures from a run's saved history and confusion matrix; nothing is computed again here."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from fashionnet.core.data import CLASS_NAMES  # noqa: E402
from fashionnet.runs import atomic_path  # noqa: E402


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def plot_train_history(history: dict, metric: str, path: Path) -> Path:
    """The assignment's show_train_history: train vs validation of one metric per epoch."""
    return _save(history_figure(history, metric), path)


def history_figure(history: dict, metric: str):
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(history[metric]) + 1)
    ax.plot(epochs, history[metric], label="train")
    if f"val_{metric}" in history:
        ax.plot(epochs, history[f"val_{metric}"], label="validation")
    ax.set_title(f"Train history: {metric}")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are counted: no 2.5 on the axis
    ax.set_ylabel(metric)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def plot_confusion_matrix(confusion: np.ndarray, path: Path, title: str = "Confusion matrix (test set)") -> Path:
    fig, ax = plt.subplots(figsize=(8, 7))
    ConfusionMatrixDisplay(confusion, display_labels=list(CLASS_NAMES)).plot(
        ax=ax, cmap="Blues", colorbar=True, xticks_rotation=45, values_format="d"
    )
    ax.set_xlabel("predict")
    ax.set_ylabel("label")
    ax.set_title(title)
    return _save(fig, path)
