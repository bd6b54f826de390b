"""report.md from a run folder: settings, environment and last-epoch metrics read as a person expects."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fashionnet.config import TrainConfig
from fashionnet.core.data import CLASS_NAMES
from fashionnet.evaluation.report import build_report


@pytest.fixture
def run_folder(tmp_path):
    """A finished run's files as train and evaluate write them, without training (the report only reads them)."""
    run = tmp_path / "run"
    run.mkdir()
    environment = {
        "fashionnet": "0.0.test",
        "keras": "3.test",
        "backend": "tensorflow",
        "numpy": "2.test",
        "data_sha256": {"train-images-idx3-ubyte.gz": "c59f468a0000"},
        "renamed_checksums": {"t10k-images-idx3-ubyte.gz": "beef0000"},
    }
    config = {"config": TrainConfig(epochs=2, limit=None).to_dict(), "environment": environment}
    history = {
        "loss": [0.61234, 0.40123],
        "accuracy": [0.77456, 0.86012],
        "val_loss": [0.38771, 0.31492],
        "val_accuracy": [0.86481, 0.88325],
        "epoch_seconds": [44.4871, 29.44301],
    }
    (run / "config.json").write_text(json.dumps(config))
    (run / "history.json").write_text(json.dumps(history))
    (run / "metrics.json").write_text(json.dumps({"test_accuracy": 0.88123, "test_loss": 0.33456}))
    confusion = np.full((10, 10), 10) + np.eye(10, dtype=int) * 800
    header = ["label \\ predict"] + [f"{i} {name}" for i, name in enumerate(CLASS_NAMES)]
    rows = [",".join(header)] + [",".join([header[i + 1], *map(str, row)]) for i, row in enumerate(confusion)]
    (run / "confusion_matrix.csv").write_text("\n".join(rows) + "\n")
    (run / "classification_report.txt").write_text("    accuracy    0.88    10000\n")
    return run, config, history


def test_none_setting_says_what_it_means(run_folder):
    run, config, _ = run_folder
    report = build_report(run)
    assert config["config"]["limit"] is None
    assert "| limit | all " in report
    assert "None" not in report


def test_epoch_seconds_in_seconds_other_metrics_at_four_decimals(run_folder):
    run, _, history = run_folder
    report = build_report(run)
    assert f"| {history['epoch_seconds'][-1]:.1f} s |" in report
    assert f"{history['epoch_seconds'][-1]:.4f}" not in report
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert f"| {history[key][-1]:.4f} " in report


def test_environment_line_lists_versions_and_skips_nested_entries(run_folder):
    run, config, _ = run_folder
    (line,) = [line for line in build_report(run).splitlines() if line.startswith("Environment:")]
    for key, value in config["environment"].items():
        if isinstance(value, dict):
            assert key not in line and not any(v in line for v in value.values())
        else:
            assert f"{key} {value}" in line
    assert "{" not in line


def test_time_section_names_the_cpu_once_or_per_stage(run_folder):
    run, config, _ = run_folder
    assert "## Time" not in build_report(run)  # a run from before timings.json: no section
    big, small = "Big CPU, 2 logical CPUs, AVX-512", "Small CPU, 2 logical CPUs, AVX2 + FMA"
    config["environment"].update(cpu=big, kernel_settings={"TF_ENABLE_ONEDNN_OPTS": {"value": "1", "set_by": "user"}})
    (run / "config.json").write_text(json.dumps(config))
    timings = {stage: {"seconds": seconds, "cpu": big} for stage, seconds in [("train", 985.14), ("export", 15.9)]}
    (run / "timings.json").write_text(json.dumps(timings))
    section = build_report(run).split("## Time")[1].split("##")[0]
    assert "| train | 985.1 s |" in section and "| export | 15.9 s |" in section and "| CPU |" not in section
    assert section.count(big) == 1 and "TF_ENABLE_ONEDNN_OPTS=1 (set by user)" in section
    timings["export"]["cpu"] = small  # exported again on another machine: each row names its CPU
    (run / "timings.json").write_text(json.dumps(timings))
    section = build_report(run).split("## Time")[1].split("##")[0]
    assert f"| export | 15.9 s | {small} |" in section and f"| train | 985.1 s | {big} |" in section


@pytest.mark.parametrize("epochs", [2, 3, 7, 35])
def test_history_plots_count_epochs_in_whole_numbers(epochs):
    from fashionnet.evaluation.plots import history_figure, plt

    curve = list(np.linspace(0.8, 0.9, epochs))
    fig = history_figure({"accuracy": curve, "val_accuracy": curve}, "accuracy")
    axis = fig.axes[0]
    low, high = axis.get_xlim()
    ticks = [t for t in axis.get_xticks() if low <= t <= high]
    plt.close(fig)
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
