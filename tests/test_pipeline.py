"""The stages of a run: a rerun after a failed stage does only what is missing, and says how to finish."""

from __future__ import annotations

import os

import pytest

from fashionnet import pipeline
from fashionnet.config import TrainConfig
from fashionnet.errors import DataError, RunError, StorageError
from fashionnet.runs import RunPaths
from tests.conftest import TRAINED_RUN, TRAINED_RUN_ARGS, cli, real_data_dir

QUICK = TrainConfig(epochs=1, limit=600, batch_size=100)
TRAINED = TrainConfig(**TRAINED_RUN)  # the session's trained run


def _mtimes(paths: RunPaths) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in paths.root.iterdir() if p.is_file()}


@pytest.mark.slow
def test_rerun_after_a_failed_stage_does_only_the_missing_stages(tmp_path, data_dir, monkeypatch):
    from fashionnet.evaluation import plots

    paths = RunPaths(tmp_path / "run")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device", str(paths.confusion_png))

    monkeypatch.setattr(plots, "plot_confusion_matrix", broken)
    with pytest.raises(StorageError, match=r"confusion_matrix.png: No space left on device \(ENOSPC\)") as failed:
        pipeline.reproduce(QUICK, paths.root, data_dir, export=False, finish_command="fashionnet reproduce X")
    assert "the run is trained" in failed.value.hint and "`fashionnet reproduce X`" in failed.value.hint
    assert paths.model.is_file() and paths.metrics.is_file() and not paths.report.exists()
    trained = _mtimes(paths)
    monkeypatch.undo()

    lines = []
    pipeline.reproduce(QUICK, paths.root, data_dir, export=False, log=lines.append)
    assert lines[:2] == ["train: done before (model.keras, 1 epochs)", "evaluate: done before (metrics.json)"]
    assert paths.confusion_png.is_file() and paths.report.is_file()
    after = _mtimes(paths)
    for name in ("model.keras", "history.json", "config.json", "metrics.json"):
        assert after[name] == trained[name], f"{name} was written again"

    # nothing left to do: every stage is skipped, only the report is refreshed
    lines.clear()
    pipeline.reproduce(QUICK, paths.root, data_dir, export=False, log=lines.append)
    assert [line.split(":")[0] for line in lines] == ["train", "evaluate", "plots", "report", "reproduce"]
    assert all("done before" in line for line in lines[:3])
    assert lines[-1].startswith("reproduce: ") and "(report " in lines[-1]  # the only stage this rerun did

    with pytest.raises(RunError, match=r"trained with other options \(epochs: 1 -> 2\).*--force"):
        pipeline.reproduce(TrainConfig(epochs=2, limit=600, batch_size=100), paths.root, data_dir, export=False)


def test_a_stage_is_redone_when_its_input_is_newer(run_copy, data_dir):
    paths = RunPaths(run_copy)  # the session's run, reproduced with TRAINED
    os.utime(paths.model)  # e.g. model.keras replaced by hand: the evaluation is stale
    lines = []
    pipeline.reproduce(TRAINED, paths.root, data_dir, export=False, log=lines.append)
    assert lines[0].startswith("train: done before") and lines[1] == "evaluate: the 10,000 test images"


def test_cli_names_the_command_that_finishes_the_run(run_copy, tmp_path):
    """A data error in evaluation after training: exit 3, the error, then the command that finishes the run."""
    data = tmp_path / "data"
    data.mkdir()
    for f in real_data_dir().glob("*.gz"):
        (data / f.name).symlink_to(f)
    run = run_copy  # trained (the session's run), its evaluation and report removed
    for name in ("metrics.json", "confusion_matrix.csv", "classification_report.txt", "report.md",
                 "confusion_matrix.png", "accuracy.png", "loss.png"):  # fmt: skip
        (run / name).unlink()
    args = ("reproduce", "--out", run, *TRAINED_RUN_ARGS, "--no-export")
    labels = data / "t10k-labels-idx1-ubyte.gz"
    labels.unlink()
    labels.write_bytes(b"not gzip")

    failed = cli(*args, env={"FASHIONNET_DATA": str(data)})
    assert failed.returncode == DataError.exit_code, failed.stderr[-2000:]
    error, hint = failed.stderr.strip().splitlines()
    assert error.startswith(f"fashionnet: error: {labels}: corrupt or truncated gzip file")
    assert hint == (
        f"fashionnet: the run is trained; fix the above and run `fashionnet reproduce --out {run} "
        f"{' '.join(TRAINED_RUN_ARGS)} --no-export` to finish it (done stages are skipped)"
    )

    labels.unlink()
    labels.symlink_to(real_data_dir() / labels.name)
    model_before = (run / "model.keras").stat().st_mtime_ns
    again = cli(*args, env={"FASHIONNET_DATA": str(data)})
    assert again.returncode == 0, again.stderr[-2000:]
    assert (run / "report.md").is_file() and (run / "confusion_matrix.png").is_file()
    assert (run / "model.keras").stat().st_mtime_ns == model_before  # finished without training again
    assert "train: done before" in again.stdout
