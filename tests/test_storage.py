"""Disk full and I/O errors: a write that fails names the file and the cause (exit 10), leaves no partial file
under a final name, and keeps the previous good files; freeing space and rerunning finishes the run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import cli
from tests.fail_writes import failing_writes

MB = 1 << 20


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs: the kernel answers ENOSPC in the middle of a write once it is full (see leave_free)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (CI runs as root); the EIO tests below need nothing")
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"this machine refuses a tmpfs mount even to root: {done.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def leave_free(disk: Path, free: int) -> None:
    """Fill the disk with a ballast file until about ``free`` bytes are left (0: none)."""
    ballast = disk / "ballast"
    ballast.unlink(missing_ok=True)
    stat = os.statvfs(disk)
    size = stat.f_bavail * stat.f_frsize - free
    if size > 0:
        with open(ballast, "wb") as f:
            f.write(b"\0" * size)


def snapshot(run: Path) -> dict[str, bytes]:
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def temporary_files(run: Path) -> list[str]:
    return [p.name for p in run.rglob("*") if ".tmp" in p.name or p.name.endswith(".new")]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("fashionnet: ")]


@pytest.mark.slow
def test_a_full_disk_at_each_write_of_a_training_loses_nothing_and_the_rerun_finishes(small_disk):
    run = small_disk / "run"
    train = ("train", "--out", str(run), "--epochs", "3", "--limit", "2000", "--batch-size", "100")

    # 1. Room for one backup (weights and Adam's state, ~11.6 MB) but not for the next beside it: epoch 2's fails.
    leave_free(small_disk, 16 * MB)
    full = cli(*train)
    assert full.returncode == 10, full.stderr[-3000:]
    assert "Traceback" not in full.stderr and "Exception ignored" not in full.stderr, full.stderr[-3000:]
    first, hint = error_lines(full.stderr)
    assert first == (
        f"fashionnet: error: cannot write {run}/backup.new/latest.weights.h5: No space left on device (ENOSPC); "
        "the previous backup is kept"
    )
    assert "free space (or fix the disk) and rerun the same command to resume" in hint
    assert json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"] == 1  # epoch 1's, whole
    assert not (run / "model.keras").exists() and temporary_files(run) == []
    epoch_1 = json.loads((run / "history.partial.json").read_text())["loss"][0]

    # 2. Space for the backups, but the disk fills while model.keras is written (injected at that file).
    leave_free(small_disk, 64 * MB)
    with failing_writes(".model.*.tmp.keras"):
        no_model = cli(*train)
    assert no_model.returncode == 10, no_model.stderr[-3000:]
    assert "epoch 1/3" not in no_model.stdout and "epoch 2/3" in no_model.stdout  # resumed from the backup
    first, hint = error_lines(no_model.stderr)
    assert first == (
        f"fashionnet: error: cannot write {run}/model.keras: No space left on device (ENOSPC); "
        "no file was left under that name"
    )
    assert "the trained epochs are in the backup" in hint
    assert not (run / "model.keras").exists() and temporary_files(run) == []
    history = json.loads((run / "history.partial.json").read_text())
    assert len(history["loss"]) == 3 and history["loss"][0] == epoch_1

    # 3. The rerun saves the model without training again, with one continuous history.
    done = cli(*train)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "history.json").read_text())["loss"] == history["loss"]
    assert not (run / "backup").exists() and not (run / "history.partial.json").exists()

    # 4. A full disk while the finished run is evaluated again: every earlier result stays as it was.
    evaluated = cli("evaluate", run)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    before = snapshot(run)
    leave_free(small_disk, 0)
    again = cli("evaluate", run)
    assert again.returncode == 10, again.stderr[-3000:]
    assert error_lines(again.stderr)[0].startswith(f"fashionnet: error: cannot write {run}/")
    assert "No space left on device (ENOSPC); the previous " in again.stderr and "Traceback" not in again.stderr
    assert snapshot(run) == before and temporary_files(run) == []

    # 5. A forced retrain whose model cannot be saved: the old model.keras is untouched.
    leave_free(small_disk, 64 * MB)
    with failing_writes(".model.*.tmp.keras", "EIO"):
        forced = cli(*train[:3], "--epochs", "1", *train[5:], "--force")
    assert forced.returncode == 10, forced.stderr[-3000:]
    assert error_lines(forced.stderr)[0] == (
        f"fashionnet: error: cannot write {run}/model.keras: Input/output error (EIO); "
        "the previous model.keras is unchanged"
    )
    assert (run / "model.keras").read_bytes() == before["model.keras"]


@pytest.mark.parametrize(
    "name, number, cause",
    [
        ("metrics.json", "EIO", "Input/output error (EIO)"),  # the first write of an evaluation
        ("confusion_matrix.png", "EACCES", "Permission denied (EACCES)"),  # matplotlib's, after the metrics
    ],
)
def test_an_io_error_on_a_chosen_file_names_it_and_keeps_the_previous_one(run_copy, name, number, cause):
    run = run_copy  # the session's run, evaluated by its `reproduce`
    before = snapshot(run)
    stem, suffix = name.rsplit(".", 1)
    with failing_writes(f".{stem}.*.tmp.{suffix}", number):  # atomic_path's file
        done = cli("evaluate", run)
    assert done.returncode == 10, done.stderr[-3000:]
    assert error_lines(done.stderr) == [
        f"fashionnet: error: cannot write {run}/{name}: {cause}; the previous {name} is unchanged"
    ]
    changed = {key for key in before if snapshot(run).get(key) != before[key]}
    assert name not in changed and temporary_files(run) == []
    # redone before it, whole (timings.json: the evaluation that did finish)
    assert changed <= {"metrics.json", "confusion_matrix.csv", "classification_report.txt", ".fashionnet.lock",
                       "accuracy.png", "loss.png", "confusion_matrix.png", "timings.json"}  # fmt: skip


@pytest.mark.export
@pytest.mark.slow
def test_a_full_disk_during_an_export_keeps_the_published_export(small_disk, exported):
    folder, _ = exported
    run = small_disk / "run"
    run.mkdir()
    for source in folder.parent.glob("*.json"):
        shutil.copy2(source, run / source.name)
    shutil.copy2(folder.parent / "model.keras", run / "model.keras")
    shutil.copytree(folder, run / "export")
    before = snapshot(run / "export")
    leave_free(small_disk, 3 * MB)  # less than the fp32 ONNX model (~3.9 MB)
    done = cli("export", run, "--quantize", "int8")
    assert done.returncode == 10, done.stderr[-3000:]
    (line,) = error_lines(done.stderr)
    assert line.startswith(f"fashionnet: error: cannot write {run}/.export-tmp-") and line.endswith(
        "No space left on device (ENOSPC); the published export is unchanged"
    ), line
    assert snapshot(run / "export") == before
    assert not [p.name for p in run.iterdir() if p.name.startswith(".export-tmp-")]  # the staging folder is gone
